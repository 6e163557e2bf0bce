"""AuditEvent over FHIR: searched by date, agent, entity, patient and subtype, sorted by
date, paged with next links that stay put while the log grows, and confined to the
caller's cards whatever the parameters say (https://hl7.org/fhir/R4/auditevent.html#search).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from medcard.audit.events import MEDCARD_INTERACTION, RESTFUL
from medcard.db.tables import audit_log
from medcard.fhir.search.values import date_range
from tests.api.support import assert_outcome, link

Headers = dict[str, str]
A, B = "pat-a", "pat-b"
DOC = "Practitioner/doc-1"
NURSE = "Practitioner/nurse-7"

# (when, actor, interaction, type, id, patient, organisation)
LOG = [
    ("2020-01-01T09:00:00Z", DOC, "read", "Observation", "obs-a1", A, "Organization/clinic-1"),
    ("2020-01-02T09:00:00Z", NURSE, "search", "Observation", "", A, ""),
    ("2020-01-03T09:00:00Z", DOC, "everything", "Patient", A, A, "clinic-1"),
    ("2020-01-04T09:00:00Z", f"Patient/{A}", "read", "Encounter", "enc-a1", A, ""),
    ("2020-01-05T09:00:00Z", DOC, "update", "Condition", "cond-a1", A, ""),
    ("2020-01-02T12:00:00Z", DOC, "read", "Observation", "obs-b1", B, "Organization/clinic-1"),
    ("2020-01-03T12:00:00Z", f"Patient/{B}", "read", "Patient", B, B, ""),
    ("2020-01-04T12:00:00Z", NURSE, "audit-report", "AuditEvent", "", B, ""),
]
ACTIONS = {"read": "R", "search": "R", "everything": "R", "update": "U", "audit-report": "E"}


@pytest.fixture
def log(engine: Engine) -> None:
    """Known entries, written out of date order, about cards A and B."""
    with engine.begin() as conn:
        conn.execute(
            insert(audit_log),
            [
                {
                    "recorded": date_range(when)[0],
                    "actor": actor,
                    "action": ACTIONS[interaction],
                    "interaction": interaction,
                    "resource_type": rtype,
                    "resource_id": rid,
                    "patient_id": pid,
                    "outcome": "0",
                    "organization": org,
                }
                for when, actor, interaction, rtype, rid, pid, org in reversed(LOG)
            ],
        )


@pytest.fixture
def as_a(token: Callable[..., str]) -> Headers:
    return {"Authorization": f"Bearer {token('patient/*.rs', patient=A)}"}


def _search(client: TestClient, headers: Headers | None = None, **params: str) -> dict[str, Any]:
    params.setdefault("date", "lt2021")  # only the entries above, not the test's own reads
    r = client.get("/fhir/AuditEvent", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["resourceType"] == "Bundle"
    return body


def _when(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["recorded"][:13] for e in bundle.get("entry", [])]


def _patients(bundle: dict[str, Any]) -> set[str]:
    return {
        x["what"]["reference"]
        for e in bundle.get("entry", [])
        for x in e["resource"].get("entity", [])
        if x.get("type", {}).get("code") == "1"
    }


def test_sort_by_date_both_ways(client: TestClient, log: None) -> None:
    newest = _when(_search(client, patient=A, _sort="-date"))
    oldest = _when(_search(client, patient=A, _sort="date"))
    assert newest == [
        "2020-01-05T09",
        "2020-01-04T09",
        "2020-01-03T09",
        "2020-01-02T09",
        "2020-01-01T09",
    ]
    assert oldest == list(reversed(newest))
    # by date, not by the order entries were written (the fixture wrote them backwards)
    everyone = _when(_search(client, _sort="date"))
    assert everyone == sorted(everyone)
    assert len(everyone) == len(LOG)
    assert _when(_search(client, _sort="-_lastUpdated")) == sorted(everyone, reverse=True)


@pytest.mark.parametrize(
    ("date", "days"),
    [
        ("2020-01-03", ["03"]),
        ("eq2020-01-03", ["03"]),
        ("ge2020-01-03", ["03", "04", "05"]),
        ("gt2020-01-03", ["04", "05"]),
        ("le2020-01-03", ["01", "02", "03"]),
        ("lt2020-01-03", ["01", "02"]),
        ("ge2020-01-02T10:00:00+03:00", ["02", "03", "04", "05"]),
        ("ne2020-01-03", ["01", "02", "04", "05"]),
        ("2020-02", []),
    ],
)
def test_date_prefixes(client: TestClient, log: None, date: str, days: list[str]) -> None:
    got = _search(client, patient=A, date=date, _sort="date")
    assert [w[8:10] for w in _when(got)] == days
    assert got["total"] == len(days)


def test_date_range_from_two_parameters(client: TestClient, log: None) -> None:
    r = client.get(
        "/fhir/AuditEvent",
        params=[
            ("patient", A),
            ("date", "ge2020-01-02"),
            ("date", "le2020-01-04"),
            ("_sort", "date"),
        ],
    )
    assert [w[8:10] for w in _when(r.json())] == ["02", "03", "04"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"agent": DOC}, 4),
        ({"agent": "doc-1"}, 4),
        ({"agent:Practitioner": "doc-1"}, 4),
        ({"agent": f"http://elsewhere.example/fhir/{DOC}"}, 4),
        ({"agent": f"{DOC},{NURSE}"}, 6),
        ({"agent": "Organization/clinic-1"}, 3),  # the organisation the doctor acted for
        ({"agent": "Patient/pat-b"}, 1),
        ({"agent": "Practitioner/nobody"}, 0),
        ({"entity": "Observation/obs-a1"}, 1),
        ({"entity": "Observation"}, 3),
        ({"entity": f"Patient/{A}"}, 5),  # every entry about A's card names it as an entity
        ({"entity:Patient": B}, 3),
        ({"entity": "cond-a1"}, 1),
        ({"patient": A}, 5),
        ({"patient": f"Patient/{B}"}, 3),
        ({"patient": f"{A},{B}"}, 8),
        ({"patient": "Practitioner/pat-a"}, 0),
        ({"subtype": "read"}, 4),
        ({"subtype": f"{RESTFUL}|read"}, 4),
        ({"subtype": f"{RESTFUL}|"}, 6),
        ({"subtype": f"{MEDCARD_INTERACTION}|"}, 2),
        ({"subtype": f"{MEDCARD_INTERACTION}|read"}, 0),
        ({"subtype": "everything,audit-report"}, 2),
        ({"subtype": "http://other.example|read"}, 0),
        ({"action": "U"}, 1),
        ({"agent": DOC, "subtype": "read"}, 2),  # two parameters: both hold
    ],
)
def test_search_parameters(
    client: TestClient, log: None, params: dict[str, str], expected: int
) -> None:
    got = _search(client, **params)
    assert got["total"] == expected, got
    assert len(got.get("entry", [])) == expected


def test_subtype_and_agent_show_in_the_resource(client: TestClient, log: None) -> None:
    got = _search(client, subtype="everything")
    (event,) = [e["resource"] for e in got["entry"]]
    assert event["subtype"] == [{"system": MEDCARD_INTERACTION, "code": "everything"}]
    assert event["agent"][0]["who"] == {"reference": DOC}
    assert event["agent"][1]["who"] == {"reference": "Organization/clinic-1"}


def test_paging_walks_every_entry_once_while_the_log_grows(
    client: TestClient, log: None, engine: Engine
) -> None:
    page = _search(client, _sort="-date", _count="3")
    assert page["total"] == len(LOG)
    seen = _when(page)
    url = link(page, "next")
    assert url is not None
    assert "_sort=-date" in url
    assert link(page, "previous") is None
    while url:
        # every request writes to the log (reads of the log included) and a newer entry
        # lands in the window: the pages must not shift under the client
        with engine.begin() as conn:
            conn.execute(
                insert(audit_log).values(
                    recorded=date_range("2020-01-06")[0],
                    actor=DOC,
                    action="R",
                    interaction="read",
                    patient_id=A,
                    outcome="0",
                )
            )
        r = client.get(url)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == len(LOG)
        assert len(page["entry"]) <= 3
        seen += _when(page)
        assert link(page, "previous") is not None
        url = link(page, "next")
    assert seen == sorted((w[:13] for w, *_ in LOG), reverse=True)
    # a fresh search sees the newer entries
    assert _search(client, _sort="-date")["total"] == len(LOG) + 2


def test_count_zero_gives_the_total_and_no_next_link(client: TestClient, log: None) -> None:
    got = _search(client, _count="0")
    assert got["total"] == len(LOG)
    assert got["entry"] == []
    assert link(got, "next") is None


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"_sort": "agent"}, "agent"),
        ({"_sort": "-outcome,date"}, "outcome"),
        ({"patient:missing": "true"}, "missing"),
        ({"subtype:text": "read"}, "text"),
        ({"agent": ""}, "reference"),
        ({"date": "sometime"}, "sometime"),
        ({"_snapshot": "x"}, "x"),
        ({"site": "x"}, "site"),
    ],
)
def test_bad_parameters_are_refused_with_an_outcome(
    client: TestClient, params: dict[str, str], word: str
) -> None:
    assert_outcome(client.get("/fhir/AuditEvent", params=params), 400, word)


# -- a patient's token: only their own card's entries, by every parameter ------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"patient": B},
        {"patient": f"{A},{B}"},
        {"entity": f"Patient/{B}"},
        {"entity:Patient": B},
        {"entity": "Observation/obs-b1"},
        {"entity": "Observation"},
        {"agent": f"Patient/{B}"},
        {"agent": DOC},
        {"agent": "Organization/clinic-1"},
        {"subtype": "read"},
        {"subtype": f"{MEDCARD_INTERACTION}|"},
        {"date": "ge2020-01-01"},
        {"_sort": "-date"},
        {"_sort": "date", "_count": "1"},
        {"_snapshot": "999999999"},
    ],
)
def test_patient_never_sees_another_cards_audit_events(
    client: TestClient, log: None, as_a: Headers, params: dict[str, str]
) -> None:
    got = _search(client, as_a, **params)
    assert _patients(got) <= {f"Patient/{A}"}
    assert got["total"] <= 5
    url = link(got, "next")
    while url:  # and not on later pages either
        page = client.get(url, headers=as_a).json()
        assert _patients(page) <= {f"Patient/{A}"}
        url = link(page, "next")


def test_patient_sees_own_entries_by_the_same_parameters(
    client: TestClient, log: None, as_a: Headers
) -> None:
    assert _search(client, as_a, agent=DOC)["total"] == 3
    assert _search(client, as_a, entity=f"Patient/{B}")["total"] == 0
    assert _search(client, as_a, patient=B)["total"] == 0
    got = _search(client, as_a, _sort="date", _count="2")
    assert _when(got) == ["2020-01-01T09", "2020-01-02T09"]
    nxt = client.get(str(link(got, "next")), headers=as_a).json()
    assert _when(nxt) == ["2020-01-03T09", "2020-01-04T09"]


def test_patient_cannot_read_another_cards_event_by_id(
    client: TestClient, log: None, as_a: Headers, engine: Engine
) -> None:
    with engine.connect() as conn:
        b_event = conn.execute(
            select(audit_log.c.id).where(audit_log.c.patient_id == B).limit(1)
        ).scalar_one()
    assert_outcome(client.get(f"/fhir/AuditEvent/{b_event}", headers=as_a), 404)
    assert client.get(f"/fhir/AuditEvent/{b_event}").status_code == 200


def test_reading_the_log_is_itself_recorded(
    client: TestClient, log: None, as_a: Headers, engine: Engine
) -> None:
    _search(client, as_a, _sort="-date")
    _search(client, patient=B)
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.interaction, audit_log.c.patient_id)
            .where(audit_log.c.resource_type == "AuditEvent", audit_log.c.interaction == "search")
            .order_by(audit_log.c.id)
        ).all()
    assert [(r.actor, r.patient_id) for r in rows] == [(f"Patient/{A}", A), ("system:test", B)]
    # A sees that they looked at their own log, newest first; B's reader stays B's business
    newest = client.get("/fhir/AuditEvent", params={"_sort": "-date"}, headers=as_a).json()
    first = newest["entry"][0]["resource"]
    assert first["subtype"][0]["code"] == "search"
    assert first["entity"][0]["what"] == {"display": "AuditEvent"}
    assert _patients(newest) == {f"Patient/{A}"}
