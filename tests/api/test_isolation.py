"""A patient's token reaches that patient's compartment and shared data, by every path.

Patient A's token (``patient/*.cruds``) must not read, find, include, chain to, page
through, export or change patient B's record; what it may not see looks exactly like
what does not exist.  SMART scopes narrow further: ``patient/Observation.rs`` reads
Observations only, ``user/*.rs`` never writes.  Allowed and denied accesses are audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard import identifiers
from medcard.db.tables import audit_log, resources
from tests import factories
from tests.api.support import Create, assert_outcome, ids

Headers = dict[str, str]


def _provenance(*targets: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in targets],
        "recorded": "2024-03-01T10:00:00+03:00",
        "agent": [{"who": {"display": "Регистратура"}}],
    }


def _encounter(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": "2024-03-01T09:00:00+03:00", "end": "2024-03-01T09:30:00+03:00"},
    }


def _condition(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J06.9"}]},
        "subject": {"reference": f"Patient/{pid}"},
    }


@pytest.fixture
def world(create: Create, client: TestClient) -> dict[str, Any]:
    """Two cards, A and B, that point at each other where FHIR allows, and shared data."""
    org = create(factories.organization())
    a = create(factories.patient(family="Алексеева", given="Анна", gender="female"))
    b = create(factories.patient(family="Борисов", given="Борис"))
    b_obs = create(
        factories.observation(b["id"], performer=[{"reference": f"Organization/{org['id']}"}])
    )
    b_enc = create(_encounter(b["id"]))
    b_cond = create(_condition(b["id"]))
    b_prov = create(_provenance(f"Patient/{b['id']}"))
    # B's data that points at A: must not come back with A's searches (_revinclude).
    b_focus = create(factories.observation(b["id"], focus=[{"reference": f"Patient/{a['id']}"}]))
    a_enc = create(_encounter(a["id"]))
    a_obs = create(
        factories.observation(
            a["id"],
            performer=[
                {"reference": f"Organization/{org['id']}"},
                {"reference": f"Patient/{b['id']}"},  # e.g. measured by a relative
            ],
            derivedFrom=[{"reference": f"Observation/{b_obs['id']}"}],
            encounter={"reference": f"Encounter/{a_enc['id']}"},
        )
    )
    a_cond = create(_condition(a["id"]))
    a_prov = create(_provenance(f"Patient/{a['id']}"))
    client.get(f"/fhir/Patient/{b['id']}")  # B's audit trail gains a read by the system
    return {
        "org": org,
        "a": a,
        "b": b,
        "a_obs": a_obs,
        "a_enc": a_enc,
        "a_cond": a_cond,
        "a_prov": a_prov,
        "b_obs": b_obs,
        "b_enc": b_enc,
        "b_cond": b_cond,
        "b_prov": b_prov,
        "b_focus": b_focus,
    }


@pytest.fixture
def as_a(world: dict[str, Any], token: Callable[..., str]) -> Headers:
    return {"Authorization": f"Bearer {token('patient/*.cruds', patient=world['a']['id'])}"}


def _b_refs(world: dict[str, Any]) -> set[str]:
    keys = ("b", "b_obs", "b_enc", "b_cond", "b_prov", "b_focus")
    return {f"{world[k]['resourceType']}/{world[k]['id']}" for k in keys}


def _refs(bundle: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if "resource" in e and "id" in e["resource"]
    }


def _get(client: TestClient, url: str, headers: Headers, **params: str) -> dict[str, Any]:
    r = client.get(url, headers=headers, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# -- read and vread ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["b", "b_obs", "b_enc", "b_cond", "b_prov"])
def test_patient_cannot_read_other_patients_resources(
    client: TestClient, world: dict[str, Any], as_a: Headers, key: str
) -> None:
    res = world[key]
    rtype = res["resourceType"]
    hidden = client.get(f"/fhir/{rtype}/{res['id']}", headers=as_a)
    missing = client.get(f"/fhir/{rtype}/00000000-0000-4000-8000-000000000000", headers=as_a)
    assert_outcome(hidden, 404)
    assert_outcome(missing, 404)
    same = hidden.json()["issue"][0]["diagnostics"].replace(res["id"], "ID")
    assert same == missing.json()["issue"][0]["diagnostics"].replace(
        "00000000-0000-4000-8000-000000000000", "ID"
    )
    assert hidden.json()["issue"][0]["code"] == missing.json()["issue"][0]["code"]
    assert "etag" not in {k.lower() for k in hidden.headers}
    vread = client.get(f"/fhir/{rtype}/{res['id']}/_history/1", headers=as_a)
    assert_outcome(vread, 404)


def test_patient_reads_own_resources_and_shared_ones(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    for key in ("a", "a_obs", "a_enc", "a_cond", "a_prov", "org"):
        res = world[key]
        r = client.get(f"/fhir/{res['resourceType']}/{res['id']}", headers=as_a)
        assert r.status_code == 200, (key, r.text)
    org = world["org"]
    assert _get(client, f"/fhir/Organization/{org['id']}/_history/1", as_a)["id"] == org["id"]
    assert ids(_get(client, "/fhir/Organization", as_a)) == [org["id"]]


def test_deleted_resource_of_another_patient_is_not_found_not_gone(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    assert client.delete(f"/fhir/Condition/{world['b_cond']['id']}").status_code == 200
    r = client.get(f"/fhir/Condition/{world['b_cond']['id']}", headers=as_a)
    assert_outcome(r, 404)


# -- search --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "params"),
    [
        ("Observation", {}),
        ("Observation", {"patient": "{b}"}),
        ("Observation", {"subject": "Patient/{b}"}),
        ("Observation", {"_id": "{b_obs}"}),
        ("Observation", {"_id": "{b_obs},{a_obs}"}),
        ("Observation", {"code": "718-7", "_total": "accurate"}),
        ("Observation", {"performer": "Organization/{org}"}),
        ("Patient", {}),
        ("Patient", {"_id": "{b}"}),
        ("Patient", {"family": "Борисов"}),
        ("Patient", {"identifier": "{b_snils}"}),
        ("Encounter", {"date": "2024-03-01"}),
        ("Condition", {"code": "J06.9"}),
        ("Provenance", {"patient": "{b}"}),
        ("Provenance", {}),
    ],
)
def test_patient_search_never_returns_other_patients_rows(
    client: TestClient, world: dict[str, Any], as_a: Headers, rtype: str, params: dict[str, str]
) -> None:
    values = {k: v["id"] for k, v in world.items()}
    values["b_snils"] = world["b"]["identifier"][0]["value"]
    filled = {k: v.format(**values) for k, v in params.items()}
    bundle = _get(client, f"/fhir/{rtype}", as_a, **filled)
    assert not _refs(bundle) & _b_refs(world)
    assert all(
        e["resource"].get("subject", {}).get("reference", f"Patient/{world['a']['id']}")
        == f"Patient/{world['a']['id']}"
        for e in bundle.get("entry", [])
    )
    if "total" in bundle:
        assert bundle["total"] == len(bundle.get("entry", []))


def test_patient_search_counts_only_own_rows(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    assert _get(client, "/fhir/Observation", as_a, _summary="count")["total"] == 1
    assert _get(client, "/fhir/Patient", as_a, _summary="count")["total"] == 1
    everyone = _get(client, "/fhir/Observation", {}, _summary="count")
    assert everyone["total"] == 3


def test_post_search_is_limited_the_same_way(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    r = client.post("/fhir/Observation/_search", data={"patient": world["b"]["id"]}, headers=as_a)
    assert r.status_code == 200, r.text
    assert "entry" not in r.json()


def test_include_does_not_pull_other_patients_data(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    params = [
        ("_include", "Observation:derived-from"),
        ("_include", "Observation:performer"),
        ("_include", "Observation:patient"),
    ]
    r = client.get("/fhir/Observation", params=params, headers=as_a)
    assert r.status_code == 200, r.text
    got = _refs(r.json())
    assert f"Organization/{world['org']['id']}" in got
    assert f"Patient/{world['a']['id']}" in got
    assert not got & _b_refs(world)


def test_revinclude_does_not_pull_other_patients_data(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    params = [
        ("_revinclude", "Observation:focus"),
        ("_revinclude", "Provenance:target"),
        ("_revinclude", "Observation:performer"),
    ]
    got = _refs(_get(client, "/fhir/Patient", as_a, _id=world["a"]["id"]))
    assert got == {f"Patient/{world['a']['id']}"}
    r = client.get("/fhir/Patient", params=[("_id", world["a"]["id"]), *params], headers=as_a)
    got = _refs(r.json())
    assert f"Provenance/{world['a_prov']['id']}" in got
    assert not got & _b_refs(world)
    r = client.get(
        "/fhir/Organization", params=[("_revinclude", "Observation:performer")], headers=as_a
    )
    got = _refs(r.json())
    assert f"Observation/{world['a_obs']['id']}" in got
    assert not got & _b_refs(world)


def test_chaining_does_not_reveal_other_patients_data(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    b_snils = world["b"]["identifier"][0]["value"]
    probes = [
        {"patient.identifier": f"{identifiers.SNILS_SYSTEM}|{b_snils}"},
        {"subject:Patient.family": "Борисов"},
        # A's Observation names B as a performer: chaining must not test B's record
        {"performer:Patient.family": "Борисов"},
        {"performer:Patient.birthdate": world["b"]["birthDate"]},
        {"derived-from:Observation.code": "718-7"},
    ]
    for params in probes:
        bundle = _get(client, "/fhir/Observation", as_a, **params)
        assert "entry" not in bundle, params
    own = _get(client, "/fhir/Observation", as_a, **{"subject:Patient.family": "Алексеева"})
    assert ids(own) == [world["a_obs"]["id"]]
    shared = _get(client, "/fhir/Observation", as_a, **{"performer:Organization.name": "ГБУЗ"})
    assert ids(shared) == [world["a_obs"]["id"]]


# -- history -------------------------------------------------------------------------


def test_patient_cannot_read_other_patients_history(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    r = client.get(f"/fhir/Observation/{world['b_obs']['id']}/_history", headers=as_a)
    assert_outcome(r, 404)
    r = client.get(f"/fhir/Patient/{world['b']['id']}/_history", headers=as_a)
    assert_outcome(r, 404)
    own = _get(client, f"/fhir/Observation/{world['a_obs']['id']}/_history", as_a)
    assert own["total"] == 1


def test_type_and_system_history_hold_only_own_and_shared_versions(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    client.put(f"/fhir/Patient/{world['b']['id']}", json={**world["b"], "gender": "other"})
    typed = _get(client, "/fhir/Observation/_history", as_a)
    assert _refs(typed) == {f"Observation/{world['a_obs']['id']}"}
    assert typed["total"] == 1
    patients = _get(client, "/fhir/Patient/_history", as_a)
    assert _refs(patients) == {f"Patient/{world['a']['id']}"}
    system = _get(client, "/fhir/_history", as_a, _count="100")
    got = _refs(system)
    assert f"Organization/{world['org']['id']}" in got
    assert f"Condition/{world['a_cond']['id']}" in got
    assert not got & _b_refs(world)
    assert system["total"] == len(system["entry"])


# -- $everything ---------------------------------------------------------------------


def test_patient_cannot_export_another_card(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    r = client.get(f"/fhir/Patient/{world['b']['id']}/$everything", headers=as_a)
    assert_outcome(r, 404)
    own = _get(client, f"/fhir/Patient/{world['a']['id']}/$everything", as_a)
    got = _refs(own)
    assert {f"Patient/{world['a']['id']}", f"Observation/{world['a_obs']['id']}"} <= got
    assert f"Organization/{world['org']['id']}" in got
    assert not got & _b_refs(world)


# -- AuditEvent ----------------------------------------------------------------------


def test_patient_sees_only_audit_entries_about_own_card(
    client: TestClient, world: dict[str, Any], as_a: Headers, engine: Engine
) -> None:
    client.get(f"/fhir/Observation/{world['a_obs']['id']}", headers=as_a)
    bundle = _get(client, "/fhir/AuditEvent", as_a, _count="1000")
    assert bundle["entry"]
    a_ref = f"Patient/{world['a']['id']}"
    for e in bundle["entry"]:
        patients = [
            x["what"]["reference"]
            for x in e["resource"].get("entity", [])
            if x.get("type", {}).get("code") == "1"
        ]
        assert patients == [a_ref], e["resource"]
    assert _get(client, "/fhir/AuditEvent", as_a, patient=world["b"]["id"])["total"] == 0
    with engine.connect() as conn:
        b_event = conn.execute(
            select(audit_log.c.id).where(audit_log.c.patient_id == world["b"]["id"]).limit(1)
        ).scalar_one()
    assert_outcome(client.get(f"/fhir/AuditEvent/{b_event}", headers=as_a), 404)
    assert client.get(f"/fhir/AuditEvent/{b_event}").status_code == 200


# -- writes --------------------------------------------------------------------------


def test_patient_cannot_create_in_another_compartment(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    before = _get(client, "/fhir/Observation", {}, _summary="count")["total"]
    r = client.post("/fhir/Observation", json=factories.observation(world["b"]["id"]), headers=as_a)
    assert_outcome(r, 403)
    r = client.post("/fhir/Condition", json=_condition(world["b"]["id"]), headers=as_a)
    assert_outcome(r, 403)
    orphan = {k: v for k, v in factories.observation("x").items() if k != "subject"}
    assert_outcome(client.post("/fhir/Observation", json=orphan, headers=as_a), 403)
    r = client.put(
        "/fhir/Observation/chosen-by-a",
        json={**factories.observation(world["b"]["id"]), "id": "chosen-by-a"},
        headers=as_a,
    )
    # A compartment-limited caller never creates at a chosen id (issue 17): that
    # would tell which ids are taken in records it cannot see.
    assert_outcome(r, 404)
    assert _get(client, "/fhir/Observation", {}, _summary="count")["total"] == before


def test_patient_can_write_in_own_compartment(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    r = client.post("/fhir/Observation", json=factories.observation(world["a"]["id"]), headers=as_a)
    assert r.status_code == 201, r.text
    obs = r.json()
    r = client.put(
        f"/fhir/Observation/{obs['id']}", json={**obs, "status": "amended"}, headers=as_a
    )
    assert r.status_code == 200, r.text
    assert client.delete(f"/fhir/Observation/{obs['id']}", headers=as_a).status_code == 200


def test_patient_cannot_change_or_delete_another_patients_resources(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    b_obs = world["b_obs"]
    r = client.put(
        f"/fhir/Observation/{b_obs['id']}", json={**b_obs, "status": "cancelled"}, headers=as_a
    )
    assert r.status_code in (403, 404), r.text
    assert_outcome(r, r.status_code)
    assert client.delete(f"/fhir/Observation/{b_obs['id']}", headers=as_a).status_code in (403, 404)
    assert client.delete(f"/fhir/Patient/{world['b']['id']}", headers=as_a).status_code in (
        403,
        404,
    )
    r = client.delete("/fhir/Observation", params={"_id": b_obs["id"]}, headers=as_a)
    assert r.status_code == 200
    r = client.put(
        "/fhir/Observation",
        params={"_id": b_obs["id"]},
        json={**b_obs, "status": "cancelled"},
        headers=as_a,
    )
    assert r.status_code in (400, 403, 404), r.text
    stored = client.get(f"/fhir/Observation/{b_obs['id']}").json()
    assert stored["status"] == "final"
    assert stored["meta"]["versionId"] == "1"
    assert client.get(f"/fhir/Patient/{world['b']['id']}").status_code == 200


def test_patient_cannot_move_own_resource_into_another_compartment(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    a_obs = world["a_obs"]
    moved = {**a_obs, "subject": {"reference": f"Patient/{world['b']['id']}"}}
    assert_outcome(client.put(f"/fhir/Observation/{a_obs['id']}", json=moved, headers=as_a), 403)
    assert client.get(f"/fhir/Observation/{a_obs['id']}").json()["meta"]["versionId"] == "1"


def test_patient_transaction_touching_another_card_writes_nothing(
    client: TestClient, world: dict[str, Any], as_a: Headers, engine: Engine
) -> None:
    with engine.connect() as conn:
        before = conn.execute(select(resources.c.id, resources.c.version_id)).all()
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": factories.observation(world["a"]["id"]),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": factories.observation(world["b"]["id"]),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    r = client.post("/fhir", json=tx, headers=as_a)
    assert r.status_code in (403, 404), r.text
    with engine.connect() as conn:
        assert conn.execute(select(resources.c.id, resources.c.version_id)).all() == before


def test_patient_cannot_change_shared_reference_data(
    client: TestClient, world: dict[str, Any], as_a: Headers
) -> None:
    org = world["org"]
    r = client.put(
        f"/fhir/Organization/{org['id']}", json={**org, "name": "Переименовано"}, headers=as_a
    )
    assert_outcome(r, 403)
    assert_outcome(client.delete(f"/fhir/Organization/{org['id']}", headers=as_a), 403)
    assert_outcome(
        client.post("/fhir/Organization", json=factories.organization(), headers=as_a), 403
    )
    stored = client.get(f"/fhir/Organization/{org['id']}").json()
    assert stored["name"] == org["name"]
    assert stored["meta"]["versionId"] == "1"


# -- scopes narrow -------------------------------------------------------------------


def test_observation_scope_cannot_read_conditions(
    client: TestClient, world: dict[str, Any], token: Callable[..., str]
) -> None:
    only_obs = {
        "Authorization": f"Bearer {token('patient/Observation.rs', patient=world['a']['id'])}"
    }
    assert ids(_get(client, "/fhir/Observation", only_obs)) == [world["a_obs"]["id"]]
    assert_outcome(client.get(f"/fhir/Condition/{world['a_cond']['id']}", headers=only_obs), 403)
    assert_outcome(client.get("/fhir/Condition", headers=only_obs), 403)
    assert_outcome(client.get("/fhir/Condition/_history", headers=only_obs), 403)
    r = client.get(f"/fhir/Patient/{world['a']['id']}/$everything", headers=only_obs)
    assert_outcome(r, 403)
    included = _get(client, "/fhir/Observation", only_obs, _include="Observation:encounter")
    assert _refs(included) == {f"Observation/{world['a_obs']['id']}"}
    r = client.get(
        "/fhir/Observation", params={"encounter:Encounter.status": "finished"}, headers=only_obs
    )
    assert_outcome(r, 403, "Encounter")
    r = client.post(
        "/fhir/Observation", json=factories.observation(world["a"]["id"]), headers=only_obs
    )
    assert_outcome(r, 403)


def test_user_read_scope_cannot_write(
    client: TestClient, world: dict[str, Any], token: Callable[..., str]
) -> None:
    role = {"role": "practitioner", "orgs": ["unrelated-clinic"]}
    reader = {"Authorization": f"Bearer {token('user/*.rs', subject='Practitioner/1', extra=role)}"}
    # A practitioner without a care relation to these patients sees none of them ...
    assert _get(client, "/fhir/Observation", reader, _summary="count")["total"] == 0
    assert client.get(f"/fhir/Patient/{world['b']['id']}", headers=reader).status_code == 404
    # ... and a token naming a member of staff without their role is refused outright.
    roleless = {"Authorization": f"Bearer {token('user/*.rs', subject='Practitioner/1')}"}
    assert_outcome(client.get("/fhir/Observation", headers=roleless), 401)
    a = world["a"]
    assert_outcome(client.post("/fhir/Patient", json=factories.patient(), headers=reader), 403)
    assert_outcome(client.put(f"/fhir/Patient/{a['id']}", json=a, headers=reader), 403)
    assert_outcome(client.delete(f"/fhir/Patient/{a['id']}", headers=reader), 403)
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": factories.patient(), "request": {"method": "POST", "url": "Patient"}}
        ],
    }
    assert_outcome(client.post("/fhir", json=tx, headers=reader), 403)
    assert client.get(f"/fhir/Patient/{a['id']}").json()["meta"]["versionId"] == "1"


def test_patient_scope_without_a_patient_claim_reaches_nothing(
    client: TestClient, world: dict[str, Any], token: Callable[..., str]
) -> None:
    nobody = {"Authorization": f"Bearer {token('patient/*.rs', subject='Patient/x')}"}
    assert_outcome(client.get("/fhir/Observation", headers=nobody), 403)
    assert_outcome(client.get(f"/fhir/Patient/{world['a']['id']}", headers=nobody), 403)


# -- audit ---------------------------------------------------------------------------


def test_allowed_and_denied_reads_are_audited(
    client: TestClient, world: dict[str, Any], as_a: Headers, engine: Engine
) -> None:
    a_obs, b_obs = world["a_obs"]["id"], world["b_obs"]["id"]
    actor = f"Patient/{world['a']['id']}"
    client.get(f"/fhir/Observation/{a_obs}", headers=as_a)
    client.get(f"/fhir/Observation/{b_obs}", headers=as_a)
    client.get("/fhir/Observation", params={"code": "718-7"}, headers=as_a)
    client.get(f"/fhir/Patient/{world['a']['id']}/$everything", headers=as_a)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                audit_log.c.interaction,
                audit_log.c.resource_id,
                audit_log.c.patient_id,
                audit_log.c.outcome,
            ).where(audit_log.c.actor == actor)
        ).all()
    assert ("read", a_obs, world["a"]["id"], "0") in rows
    assert ("read", b_obs, "", "4") in rows
    assert any(r.interaction == "search" and r.patient_id == world["a"]["id"] for r in rows)
    assert any(r.interaction == "everything" and r.outcome == "0" for r in rows)
    # the system token sees A's reads of their own card in the AuditEvent view
    events = client.get(
        "/fhir/AuditEvent", params={"agent": actor, "entity": f"Observation/{a_obs}"}
    ).json()
    assert events["total"] >= 1
    assert events["entry"][0]["resource"]["agent"][0]["who"]["reference"] == actor
