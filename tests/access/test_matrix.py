"""The access matrix: every role × every FHIR interaction × whose record it is.

One small world (two clinics, a lab, an authority; a patient attached to each clinic;
a referral to the lab; a correction request) and, for each cell, the expected answer.
Every allowed read must leave an audit entry naming the caller and the patient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard.db.tables import audit_log
from tests import factories

ALLOW, DENY = "allow", "deny"
Headers = dict[str, str]


def _post(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def world(client: TestClient) -> dict[str, Any]:
    """Clinic A and B, lab L, authority R; patient X attached to A, Y attached to B."""
    w: dict[str, Any] = {}
    for key in ("A", "B", "L", "R"):
        w[key] = _post(client, factories.organization(f"Организация {key}"))["id"]
    w["P1"] = _post(client, {"resourceType": "Practitioner", "name": [{"family": "Петров"}]})["id"]
    _post(
        client,
        {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": {"reference": f"Practitioner/{w['P1']}"},
            "organization": {"reference": f"Organization/{w['A']}"},
        },
    )
    w["X"] = _post(
        client, factories.patient(managingOrganization={"reference": f"Organization/{w['A']}"})
    )["id"]
    w["Y"] = _post(
        client,
        factories.patient(
            family="Сидорова",
            given="Анна",
            gender="female",
            managingOrganization={"reference": f"Organization/{w['B']}"},
        ),
    )["id"]
    w["obs_X"] = _post(client, factories.observation(w["X"]))["id"]
    w["obs_Y"] = _post(client, factories.observation(w["Y"]))["id"]
    w["sr_Y"] = _post(
        client,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "Общий анализ крови"},
            "subject": {"reference": f"Patient/{w['Y']}"},
            "performer": [{"reference": f"Organization/{w['L']}"}],
        },
    )["id"]
    w["task"] = _post(
        client,
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "focus": {"reference": f"Observation/{w['obs_X']}"},
            "for": {"reference": f"Patient/{w['X']}"},
            "owner": {"reference": f"Organization/{w['R']}"},
        },
    )["id"]
    return w


def headers_for(role: str, w: dict[str, Any], token: Callable[..., str]) -> Headers:
    if role == "patient":
        tok = token("patient/*.cruds", patient=w["X"], extra={"role": "patient"})
    elif role in ("practitioner", "practitioner+break-glass"):
        tok = token("user/*.cruds", subject=f"Practitioner/{w['P1']}",
                    extra={"role": "practitioner", "orgs": [w["A"]]})  # fmt: skip
    elif role == "lab":
        tok = token("system/*.cruds", subject="Client/lab", extra={"role": "lab", "orgs": [w["L"]]})
    elif role == "reviewer":
        tok = token(
            "user/*.cruds", subject="Account/reviewer", extra={"role": "reviewer", "orgs": [w["R"]]}
        )
    else:  # registrar, org_admin, region_admin
        tok = token(
            "user/*.cruds", subject=f"Account/{role}", extra={"role": role, "orgs": [w["A"]]}
        )
    return {"Authorization": f"Bearer {tok}"}


# (role, interaction, target) -> expected.  Targets: "X" is attached to clinic A (the
# patient's own card for the patient role), "Y" is attached elsewhere.
MATRIX: dict[tuple[str, str, str], str] = {}


def _row(role: str, target: str, **cells: str) -> None:
    for interaction, expected in cells.items():
        MATRIX[(role, interaction, target)] = expected


_all = dict.fromkeys(
    ("read", "search", "history", "everything", "create", "update", "delete"), DENY
)
_row(
    "patient",
    "X",
    read=ALLOW,
    search=ALLOW,
    history=ALLOW,
    everything=ALLOW,
    create=ALLOW,
    update=DENY,
    delete=DENY,
)
_row("patient", "Y", **_all)
_row("practitioner", "X", **dict.fromkeys(_all, ALLOW))
_row("practitioner", "Y", **_all)
_row(
    "practitioner+break-glass",
    "Y",
    read=ALLOW,
    search=ALLOW,
    history=ALLOW,
    everything=ALLOW,
    create=ALLOW,
    update=ALLOW,
    delete=ALLOW,
)
for _admin in ("registrar", "org_admin", "region_admin"):
    _row(_admin, "X", **_all)  # clinical content: never
    _row(_admin, "Y", **_all)
_row(
    "reviewer",
    "X",
    read=ALLOW,
    search=ALLOW,
    history=ALLOW,
    everything=DENY,
    create=DENY,
    update=DENY,
    delete=DENY,
)
_row("reviewer", "Y", **_all)
_row("lab", "X", **_all)
_row(
    "lab",
    "Y",
    read=DENY,
    search=DENY,
    history=DENY,
    everything=DENY,
    create=ALLOW,
    update=ALLOW,
    delete=DENY,
)


def _attempt(
    client: TestClient, h: Headers, interaction: str, target: str, w: dict[str, Any]
) -> bool:
    pid, obs = w[target], w[f"obs_{target}"]
    if interaction == "read":
        return client.get(f"/fhir/Observation/{obs}", headers=h).status_code == 200
    if interaction == "search":
        r = client.get("/fhir/Observation", params={"_id": obs}, headers=h)
        return r.status_code == 200 and len(r.json().get("entry", [])) == 1
    if interaction == "history":
        return client.get(f"/fhir/Observation/{obs}/_history", headers=h).status_code == 200
    if interaction == "everything":
        r = client.get(f"/fhir/Patient/{pid}/$everything", headers=h)
        return r.status_code == 200 and any(
            e["resource"]["id"] == obs for e in r.json().get("entry", [])
        )
    body = factories.observation(pid, value=140.0)
    if target == "Y":
        body["basedOn"] = [{"reference": f"ServiceRequest/{w['sr_Y']}"}]
    if interaction == "create":
        return client.post("/fhir/Observation", json=body, headers=h).status_code == 201
    if interaction == "update":
        return (
            client.put(f"/fhir/Observation/{obs}", json={**body, "id": obs}, headers=h).status_code
            == 200
        )
    if interaction == "delete":
        return client.delete(f"/fhir/Observation/{obs}", headers=h).status_code == 200
    raise AssertionError(interaction)


def _break_glass(client: TestClient, h: Headers, patient: str) -> None:
    r = client.post(
        f"/fhir/Patient/{patient}/$break-glass",
        json={"resourceType": "Parameters",
              "parameter": [{"name": "reason", "valueString": "Поступил без сознания, нужна история болезни"}]},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("role", "interaction", "target"), sorted(MATRIX))
def test_access_matrix(
    client: TestClient,
    world: dict[str, Any],
    token: Callable[..., str],
    engine: Engine,
    role: str,
    interaction: str,
    target: str,
) -> None:
    h = headers_for(role, world, token)
    if role == "practitioner+break-glass":
        _break_glass(client, h, world[target])
    allowed = _attempt(client, h, interaction, target, world)
    assert allowed == (MATRIX[(role, interaction, target)] == ALLOW), (role, interaction, target)
    if allowed and interaction in ("read", "search", "history", "everything"):
        with engine.connect() as conn:
            actors = set(
                conn.execute(
                    select(audit_log.c.actor).where(
                        audit_log.c.patient_id == world[target], audit_log.c.outcome == "0"
                    )
                ).scalars()
            )
        assert actor_of(role, world) in actors, "an allowed read left no audit entry"


def actor_of(role: str, w: dict[str, Any]) -> str:
    return {
        "patient": f"Patient/{w['X']}",
        "practitioner": f"Practitioner/{w['P1']}",
        "practitioner+break-glass": f"Practitioner/{w['P1']}",
        "lab": "Client/lab",
        "reviewer": "Account/reviewer",
    }.get(role, f"Account/{role}")


def test_denied_reads_of_other_patients_look_like_missing_resources(
    client: TestClient, world: dict[str, Any], token: Callable[..., str]
) -> None:
    h = headers_for("patient", world, token)
    hidden = client.get(f"/fhir/Observation/{world['obs_Y']}", headers=h)
    missing = client.get("/fhir/Observation/no-such-observation", headers=h)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["issue"][0]["code"] == missing.json()["issue"][0]["code"]


def test_registrar_reads_and_changes_demographics_but_not_clinical_content(
    client: TestClient, world: dict[str, Any], token: Callable[..., str]
) -> None:
    h = headers_for("registrar", world, token)
    patient = client.get(f"/fhir/Patient/{world['Y']}", headers=h)
    assert patient.status_code == 200
    changed = {**patient.json(), "telecom": [{"system": "phone", "value": "+79161234567"}]}
    assert client.put(f"/fhir/Patient/{world['Y']}", json=changed, headers=h).status_code == 200
    refused = client.get("/fhir/Condition", headers=h)
    assert refused.status_code == 403
    assert "demographics" in refused.json()["issue"][0]["diagnostics"]


def test_break_glass_needs_a_reason_and_is_audited_as_emergency(
    client: TestClient, world: dict[str, Any], token: Callable[..., str], engine: Engine
) -> None:
    h = headers_for("practitioner", world, token)
    short = client.post(
        f"/fhir/Patient/{world['Y']}/$break-glass",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "надо"}],
        },
        headers=h,
    )
    assert short.status_code == 400
    _break_glass(client, h, world["Y"])
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.interaction, audit_log.c.detail).where(
                audit_log.c.patient_id == world["Y"]
            )
        ).all()
    assert any(i == "break-glass" and "Поступил без сознания" in d for i, d in rows)
    assert client.get(f"/fhir/Observation/{world['obs_Y']}", headers=h).status_code == 200
    with engine.connect() as conn:
        flagged = conn.execute(
            select(audit_log.c.interaction, audit_log.c.emergency, audit_log.c.organization).where(
                audit_log.c.patient_id == world["Y"],
                audit_log.c.actor == f"Practitioner/{world['P1']}",
            )
        ).all()
    assert ("read", True, f"Organization/{world['A']}") in [(i, bool(e), o) for i, e, o in flagged]


def test_patients_cannot_break_glass(
    client: TestClient, world: dict[str, Any], token: Callable[..., str]
) -> None:
    h = headers_for("patient", world, token)
    r = client.post(
        f"/fhir/Patient/{world['Y']}/$break-glass",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "хочу посмотреть чужую карту"}],
        },
        headers=h,
    )
    assert r.status_code == 403


def test_patient_entries_are_marked_and_only_those_can_be_changed_by_the_patient(
    client: TestClient, world: dict[str, Any], token: Callable[..., str]
) -> None:
    h = headers_for("patient", world, token)
    mine = client.post(
        "/fhir/Observation", json=factories.observation(world["X"], value=120.0), headers=h
    )
    assert mine.status_code == 201
    tags = mine.json()["meta"]["tag"]
    assert any(t["code"] == "patient" for t in tags)
    again = {**mine.json(), "valueQuantity": {"value": 121, "unit": "g/L"}}
    assert (
        client.put(f"/fhir/Observation/{mine.json()['id']}", json=again, headers=h).status_code
        == 200
    )
    assert client.delete(f"/fhir/Observation/{mine.json()['id']}", headers=h).status_code == 200
    # A clinician's write cannot carry the patient-entered tag, even if it sends one.
    forged = factories.observation(world["X"])
    forged["meta"] = {"tag": tags}
    stored = client.post("/fhir/Observation", json=forged).json()
    assert "tag" not in stored["meta"]


def test_lab_cannot_deliver_results_for_a_referral_addressed_elsewhere(
    client: TestClient, world: dict[str, Any], token: Callable[..., str]
) -> None:
    other = client.post(
        "/fhir/ServiceRequest",
        json={"resourceType": "ServiceRequest", "status": "active", "intent": "order",
              "code": {"text": "МРТ"}, "subject": {"reference": f"Patient/{world['Y']}"},
              "performer": [{"reference": f"Organization/{world['B']}"}]},
    ).json()  # fmt: skip
    h = headers_for("lab", world, token)
    body = factories.observation(world["Y"])
    body["basedOn"] = [{"reference": f"ServiceRequest/{other['id']}"}]
    r = client.post("/fhir/Observation", json=body, headers=h)
    assert r.status_code == 403
    assert "not addressed to your organisation" in r.json()["issue"][0]["diagnostics"]


def test_practitioner_token_from_cli_carries_the_organisations_of_their_roles(
    world: dict[str, Any], engine: Engine
) -> None:
    from medcard.access.roles import Role
    from medcard.access.subjects import token_claims

    claims = token_claims(engine, Role.PRACTITIONER, f"Practitioner/{world['P1']}")
    assert claims == {"role": "practitioner", "orgs": [world["A"]]}
