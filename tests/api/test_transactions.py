"""batch and transaction Bundles (R4 3.1.0.11) and Patient/$everything."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from medcard import identifiers
from medcard.db.tables import resource_versions, resources
from tests import factories
from tests.api.support import Create, Search, assert_outcome, ids, link

DATA = Path(__file__).parent.parent / "data"
SNILS = identifiers.SNILS_SYSTEM


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(full_url: str | None, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def counts(engine: Engine) -> tuple[int, int]:
    """(current resources, stored versions): both stay put when a transaction fails."""
    with engine.connect() as conn:
        current = conn.execute(select(func.count()).select_from(resources)).scalar_one()
        versions = conn.execute(select(func.count()).select_from(resource_versions)).scalar_one()
    return current, versions


def send(client: TestClient, body: dict[str, Any], **headers: str) -> Any:
    return client.post("/fhir", json=body, headers=headers)


def created_id(entry: dict[str, Any]) -> str:
    """The id from a response entry's location 'Type/id/_history/n'."""
    return str(entry["response"]["location"].split("/")[1])


# -- transaction ---------------------------------------------------------------------


def test_transaction_rewrites_urn_uuid_references(client: TestClient) -> None:
    pid = "urn:uuid:0c3a4f4e-4e0b-4d9b-9a8e-000000000001"
    oid = "urn:uuid:0c3a4f4e-4e0b-4d9b-9a8e-000000000002"
    obs = factories.observation("x")
    obs["subject"] = {"reference": pid}
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
        "subject": {"reference": pid},
        "result": [{"reference": oid}],
    }
    tx = bundle(
        "transaction",
        post(None, report),
        post(oid, obs),
        post(pid, factories.patient()),
    )
    r = send(client, tx)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created"] * 3
    report_id, obs_id, patient_id = (created_id(e) for e in out["entry"])
    stored_obs = client.get(f"/fhir/Observation/{obs_id}").json()
    assert stored_obs["subject"]["reference"] == f"Patient/{patient_id}"
    stored_report = client.get(f"/fhir/DiagnosticReport/{report_id}").json()
    assert stored_report["result"] == [{"reference": f"Observation/{obs_id}"}]
    assert stored_report["subject"] == {"reference": f"Patient/{patient_id}"}
    found = client.get("/fhir/Observation", params={"patient": patient_id}).json()
    assert ids(found) == [obs_id]


def test_transaction_return_representation(client: TestClient) -> None:
    tx = bundle("transaction", post("urn:uuid:1", factories.patient(family="Представлен")))
    out = send(client, tx, Prefer="return=representation").json()
    resource = out["entry"][0]["resource"]
    assert resource["name"][0]["family"] == "Представлен"
    assert resource["meta"]["versionId"] == "1"


def test_transaction_resolves_conditional_references(client: TestClient, create: Create) -> None:
    p = create(factories.patient())
    snils = p["identifier"][0]["value"]
    obs = factories.observation("x")
    obs["subject"] = {"reference": f"Patient?identifier={SNILS}|{snils}"}
    r = send(client, bundle("transaction", post(None, obs)))
    assert r.status_code == 200, r.text
    stored = client.get(f"/fhir/Observation/{created_id(r.json()['entry'][0])}").json()
    assert stored["subject"]["reference"] == f"Patient/{p['id']}"


def test_transaction_refuses_a_conditional_reference_that_matches_nothing(
    client: TestClient, engine: Engine
) -> None:
    before = counts(engine)
    obs = factories.observation("x")
    obs["subject"] = {"reference": f"Patient?identifier={SNILS}|{factories.snils()}"}
    tx = bundle("transaction", post("urn:uuid:a", factories.patient()), post(None, obs))
    assert_outcome(send(client, tx), 404, "Bundle.entry[1]", "Patient?identifier")
    assert counts(engine) == before


def test_transaction_refuses_an_ambiguous_conditional_reference(
    client: TestClient, create: Create, engine: Engine
) -> None:
    create(factories.patient(family="Двойников"))
    create(factories.patient(family="Двойников"))
    before = counts(engine)
    obs = factories.observation("x")
    obs["subject"] = {"reference": "Patient?family=Двойников"}
    assert_outcome(send(client, bundle("transaction", post(None, obs))), 412, "2")
    assert counts(engine) == before


def test_transaction_if_none_exist_reuses_the_existing_resource(
    client: TestClient, create: Create, search: Search
) -> None:
    p = create(factories.patient())
    snils = p["identifier"][0]["value"]
    full = "urn:uuid:5d0e0d0c-0000-4000-8000-000000000001"
    obs = factories.observation("x")
    obs["subject"] = {"reference": full}
    again = {**factories.patient(), "identifier": p["identifier"]}
    tx = bundle(
        "transaction",
        post(full, again, ifNoneExist=f"identifier={SNILS}|{snils}"),
        post(None, obs),
    )
    r = send(client, tx)
    assert r.status_code == 200, r.text
    first, second = r.json()["entry"]
    assert first["response"]["status"] == "200 OK"
    assert created_id(first) == p["id"]
    assert second["response"]["status"] == "201 Created"
    stored = client.get(f"/fhir/Observation/{created_id(second)}").json()
    assert stored["subject"]["reference"] == f"Patient/{p['id']}"
    assert search("Patient", {"_summary": "count"})["total"] == 1


def test_transaction_if_none_exist_creates_when_nothing_matches(
    client: TestClient, search: Search
) -> None:
    p = factories.patient()
    cond = f"identifier={SNILS}|{p['identifier'][0]['value']}"
    tx = bundle("transaction", post("urn:uuid:p", p, ifNoneExist=cond))
    first = send(client, tx).json()["entry"][0]
    assert first["response"]["status"] == "201 Created"
    second = send(client, tx).json()["entry"][0]
    assert second["response"]["status"] == "200 OK"
    assert created_id(first) == created_id(second)
    assert search("Patient", {"_summary": "count"})["total"] == 1


def test_transaction_with_one_invalid_entry_writes_nothing(
    client: TestClient, create: Create, engine: Engine
) -> None:
    existing = create(factories.patient(family="Прежний"))
    before = counts(engine)
    bad = {**factories.observation(existing["id"]), "status": "bogus"}
    renamed = {**existing, "name": [{"family": "Новый"}]}
    tx = bundle(
        "transaction",
        post("urn:uuid:p", factories.patient()),
        {"resource": renamed, "request": {"method": "PUT", "url": f"Patient/{existing['id']}"}},
        post(None, factories.observation(existing["id"])),
        post(None, bad),
    )
    assert_outcome(send(client, tx), 400, "Bundle.entry[3]", "bogus")
    assert counts(engine) == before
    assert client.get(f"/fhir/Patient/{existing['id']}").json()["name"][0]["family"] == "Прежний"


def test_transaction_with_a_reference_to_a_missing_resource_writes_nothing(
    client: TestClient, engine: Engine
) -> None:
    before = counts(engine)
    obs = factories.observation("does-not-exist")
    tx = bundle("transaction", post("urn:uuid:p", factories.patient()), post(None, obs))
    assert_outcome(send(client, tx), 404, "Patient/does-not-exist")
    assert counts(engine) == before


def test_transaction_with_a_dangling_urn_uuid_writes_nothing(
    client: TestClient, engine: Engine
) -> None:
    obs = factories.observation("x")
    obs["subject"] = {"reference": "urn:uuid:9f9f9f9f-0000-4000-8000-000000000000"}
    tx = bundle("transaction", post("urn:uuid:p", factories.patient()), post(None, obs))
    assert_outcome(send(client, tx), 400, "urn:uuid:9f9f9f9f")
    assert counts(engine) == (0, 0)


def test_transaction_refuses_a_fullurl_used_twice(client: TestClient, engine: Engine) -> None:
    tx = bundle(
        "transaction",
        post("urn:uuid:same", factories.patient()),
        post("urn:uuid:same", factories.patient()),
    )
    assert_outcome(send(client, tx), 400, "urn:uuid:same")
    assert counts(engine) == (0, 0)


def test_transaction_failure_is_audited(client: TestClient, engine: Engine) -> None:
    bad = {**factories.patient(), "gender": "bogus"}
    send(client, bundle("transaction", post(None, bad)))
    events = client.get("/fhir/AuditEvent", params={"action": "E"}).json()
    failed = [e["resource"] for e in events.get("entry", []) if e["resource"]["outcome"] == "8"]
    assert failed
    assert "bogus" in failed[0]["outcomeDesc"]


def test_transaction_processes_delete_post_put_then_get(client: TestClient, create: Create) -> None:
    gone = create(factories.patient(family="Порядков"))
    kept = create(factories.patient(family="Иной"))
    renamed = {**kept, "name": [{"family": "Порядков", "given": ["Пётр"]}]}
    tx = bundle(
        "transaction",
        {"request": {"method": "GET", "url": "Patient?family=Порядков&_sort=_id"}},
        {"resource": renamed, "request": {"method": "PUT", "url": f"Patient/{kept['id']}"}},
        post("urn:uuid:new", factories.patient(family="Порядков")),
        {"request": {"method": "DELETE", "url": f"Patient/{gone['id']}"}},
    )
    r = send(client, tx)
    assert r.status_code == 200, r.text
    got, put, posted, deleted = r.json()["entry"]
    assert put["response"]["status"] == "200 OK"
    assert posted["response"]["status"] == "201 Created"
    assert deleted["response"]["status"].startswith("204")
    assert got["response"]["status"] == "200"
    seen = set(ids(got["resource"]))
    assert seen == {kept["id"], created_id(posted)}
    assert client.get(f"/fhir/Patient/{gone['id']}").status_code == 410


def test_transaction_conditional_update_and_delete(client: TestClient, create: Create) -> None:
    a = create(factories.patient(family="Условный"))
    b = create(factories.patient(family="Удаляемый"))
    snils = a["identifier"][0]["value"]
    tx = bundle(
        "transaction",
        {
            "resource": {**a, "gender": "female", "id": None},
            "request": {"method": "PUT", "url": f"Patient?identifier={SNILS}|{snils}"},
        },
        {"request": {"method": "DELETE", "url": "Patient?family=Удаляемый"}},
    )
    tx["entry"][0]["resource"].pop("id")
    r = send(client, tx)
    assert r.status_code == 200, r.text
    assert client.get(f"/fhir/Patient/{a['id']}").json()["gender"] == "female"
    assert client.get(f"/fhir/Patient/{b['id']}").status_code == 410


def test_transaction_put_with_if_match(client: TestClient, create: Create, engine: Engine) -> None:
    p = create(factories.patient())
    client.put(f"/fhir/Patient/{p['id']}", json=p)
    before = counts(engine)
    tx = bundle(
        "transaction",
        post(None, factories.patient()),
        {
            "resource": p,
            "request": {"method": "PUT", "url": f"Patient/{p['id']}", "ifMatch": 'W/"1"'},
        },
    )
    assert_outcome(send(client, tx), 412, "version 2")
    assert counts(engine) == before


def test_transaction_posted_to_the_base_url_without_a_slash_is_processed(
    live_server: str, token: Callable[..., str], engine: Engine
) -> None:
    tx = bundle("transaction", post("urn:uuid:p", factories.patient()))
    headers = {"Authorization": f"Bearer {token()}"}
    r = httpx.post(f"{live_server}/fhir", json=tx, headers=headers)  # clients do not follow 307
    assert r.status_code == 200, (r.status_code, r.headers)
    assert counts(engine) == (1, 1)


# -- batch ---------------------------------------------------------------------------


def test_batch_reports_each_entry_and_keeps_the_successes(
    client: TestClient, create: Create, search: Search
) -> None:
    p = create(factories.patient())
    good = factories.observation(p["id"])
    bad = {**factories.observation(p["id"]), "status": "bogus"}
    b = bundle(
        "batch",
        post(None, good),
        post(None, bad),
        {"request": {"method": "GET", "url": "Patient/no-such-patient"}},
        {"request": {"method": "GET", "url": f"Patient/{p['id']}"}},
        {
            "resource": {**p, "id": "other"},
            "request": {"method": "PUT", "url": f"Patient/{p['id']}"},
        },
        {"request": {"method": "DELETE", "url": f"Patient/{p['id']}/x"}},
        post(None, factories.patient(), url="Patient/chosen-id"),
    )
    r = send(client, b)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses[0] == "201 Created"
    assert statuses[1].startswith("400")
    assert "bogus" in json.dumps(out["entry"][1]["response"]["outcome"])
    assert statuses[2].startswith("404")
    assert out["entry"][2]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert statuses[3].startswith("200")
    assert out["entry"][3]["resource"]["id"] == p["id"]
    assert statuses[4].startswith("400")
    assert statuses[5].startswith("400")
    assert statuses[6].startswith("400")
    assert client.get(f"/fhir/Patient/{p['id']}").status_code == 200
    assert ids(search("Observation", {"patient": p["id"]})) == [created_id(out["entry"][0])]


def test_batch_entries_cannot_refer_to_each_other(client: TestClient, engine: Engine) -> None:
    obs = factories.observation("x")
    obs["subject"] = {"reference": "urn:uuid:p"}
    out = send(
        client, bundle("batch", post("urn:uuid:p", factories.patient()), post(None, obs))
    ).json()
    assert out["entry"][0]["response"]["status"] == "201 Created"
    assert out["entry"][1]["response"]["status"].startswith("400")
    assert counts(engine) == (1, 1)


def test_bundle_of_another_type_is_refused(client: TestClient) -> None:
    assert_outcome(send(client, bundle("collection")), 400, "collection")
    assert_outcome(send(client, factories.patient()), 400, "Bundle")


# -- $everything ---------------------------------------------------------------------


@pytest.fixture
def card(create: Create) -> dict[str, Any]:
    org = create(factories.organization())
    p = create(factories.patient(managingOrganization={"reference": f"Organization/{org['id']}"}))
    other = create(factories.patient())
    create(factories.observation(other["id"]))
    early = [create(factories.observation(p["id"], code=f"c{i}")) for i in range(3)]
    time.sleep(0.01)  # a clear _since boundary between the two groups of writes
    mark = datetime.now(UTC).isoformat(timespec="microseconds")
    time.sleep(0.01)
    late = [
        create(factories.observation(p["id"], code="late")),
        create(
            {
                "resourceType": "Condition",
                "code": {"text": "ОРВИ"},
                "subject": {"reference": f"Patient/{p['id']}"},
            }
        ),
    ]
    return {"patient": p, "org": org, "early": early, "late": late, "mark": mark, "other": other}


def _everything(client: TestClient, pid: str, **params: str) -> dict[str, Any]:
    r = client.get(f"/fhir/Patient/{pid}/$everything", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _typed(b: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in b.get("entry", [])}


def test_everything_returns_the_card_and_what_it_references(
    client: TestClient, card: dict[str, Any]
) -> None:
    p = card["patient"]
    got = _typed(_everything(client, p["id"]))
    expected = {f"Patient/{p['id']}", f"Organization/{card['org']['id']}"}
    expected |= {f"{r['resourceType']}/{r['id']}" for r in card["early"] + card["late"]}
    assert got == expected


def test_everything_since_returns_only_later_changes(
    client: TestClient, card: dict[str, Any]
) -> None:
    p = card["patient"]
    got = _typed(_everything(client, p["id"], _since=card["mark"]))
    assert got == {f"{r['resourceType']}/{r['id']}" for r in card["late"]}


def test_everything_type_limits_the_types(client: TestClient, card: dict[str, Any]) -> None:
    p = card["patient"]
    b = _everything(client, p["id"], _type="Condition")
    assert _typed(b) == {f"Condition/{card['late'][1]['id']}"}
    assert b["total"] == 1
    b = _everything(client, p["id"], _type="Patient,Observation")
    assert {k.split("/")[0] for k in _typed(b)} == {"Patient", "Observation"}
    assert b["total"] == len(b["entry"]) == 5


def test_everything_pages_with_count_and_next_links(
    client: TestClient, card: dict[str, Any]
) -> None:
    p = card["patient"]
    everything = _typed(_everything(client, p["id"]))
    seen: list[str] = []
    url: str | None = f"/fhir/Patient/{p['id']}/$everything?_count=2"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in page["entry"]]
        url = link(page, "next")
        pages += 1
        assert pages < 10
    assert pages >= 3
    assert len(seen) == len(set(seen))
    assert set(seen) == everything


def test_everything_of_an_unknown_patient_is_not_found(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/Patient/nobody/$everything"), 404, "nobody")


# -- a Synthea-like bundle -----------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def test_synthea_like_bundles_import_whole(client: TestClient, search: Search) -> None:
    providers = _load("synthea_practitioners.json")
    first = send(client, providers)
    assert first.status_code == 200, first.text
    assert [e["response"]["status"] for e in first.json()["entry"]] == ["201 Created"] * 2
    again = send(client, copy.deepcopy(providers)).json()
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 2

    card = _load("synthea_patient.json")
    r = send(client, card)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created"] * len(card["entry"])
    by_type: dict[str, list[str]] = {}
    for e in out["entry"]:
        by_type.setdefault(e["response"]["location"].split("/")[0], []).append(created_id(e))
    assert len(by_type["Claim"]) == 2
    for rtype in ("Encounter", "Condition", "CareTeam", "CarePlan", "ExplanationOfBenefit",
                  "Immunization", "MedicationRequest", "DiagnosticReport", "Provenance"):  # fmt: skip
        assert len(by_type[rtype]) == 1, rtype

    pid = by_type["Patient"][0]
    org = ids(search("Organization", {"name": "ГБУЗ"}))
    doctor = ids(search("Practitioner", {"family": "Лебедева"}))
    assert len(org) == len(doctor) == 1
    enc = client.get(f"/fhir/Encounter/{by_type['Encounter'][0]}").json()
    assert enc["subject"]["reference"] == f"Patient/{pid}"
    assert enc["serviceProvider"]["reference"] == f"Organization/{org[0]}"
    assert enc["participant"][0]["individual"]["reference"] == f"Practitioner/{doctor[0]}"
    eob = client.get(f"/fhir/ExplanationOfBenefit/{by_type['ExplanationOfBenefit'][0]}").json()
    assert eob["referral"] == {"reference": "#referral"}
    assert eob["claim"]["reference"] in {f"Claim/{c}" for c in by_type["Claim"]}

    assert len(ids(search("Claim", {"patient": pid}))) == 2
    assert ids(search("ExplanationOfBenefit", {"patient": pid})) == by_type["ExplanationOfBenefit"]
    assert (
        ids(search("CareTeam", {"participant": f"Practitioner/{doctor[0]}"})) == by_type["CareTeam"]
    )
    assert (
        ids(search("Condition", {"code": "http://snomed.info/sct|444814009"}))
        == by_type["Condition"]
    )
    assert ids(search("Observation", {"component-code": "8480-6"}))
    assert ids(search("Patient", {"identifier": f"{SNILS}|11223344595"})) == [pid]

    everything = _everything(client, pid)
    got = {e["resource"]["resourceType"] for e in everything["entry"]}
    assert {"Patient", "Claim", "ExplanationOfBenefit", "CareTeam", "Encounter", "Condition",
            "Organization", "Practitioner", "Provenance"} <= got  # fmt: skip
    assert len(everything["entry"]) == len(card["entry"]) + 2
