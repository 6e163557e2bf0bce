"""SQL injection through every search parameter type, every modifier that type takes,
chains, sorting, includes and the result parameters.  The store builds SQL from
declarations with bound values; these tests hold it to that: no payload changes what a
search matches, leaks another patient's data, errors out, or touches the schema."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, inspect, select

from medcard.db.tables import resources
from medcard.fhir.search.registry import params_for
from tests import factories

PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "x' UNION SELECT id, content, version_id, last_updated, patient_id FROM resources --",
    "1; DROP TABLE resources; --",
    "'); DELETE FROM resources; --",
    "x%' OR patient_id LIKE '%",
    "\\' OR 1=1 #",
    "1 OR 1=1",
    "gt2000-01-01' OR '1'='1",
    "http://loinc.org|8867-4' OR '1'='1",
    "Patient/x' OR '1'='1",
    "5||'1'='1",
    "%",
    "_",
    "*",
    "$$ OR 1=1 $$",
    "' || (SELECT content FROM resources LIMIT 1) || '",
    "pg_sleep(5)",
    "'; SELECT pg_sleep(5); --",
    "x' AND randomblob(1000000000) AND '",
]

# One parameter of every search type, on types whose compartment is the patient's.
BY_TYPE = {
    "token": ("Observation", ["code", "identifier", "status"]),
    "string": ("Patient", ["name", "family", "address"]),
    "date": ("Observation", ["date"]),
    "reference": ("Observation", ["subject", "encounter"]),
    "quantity": ("Observation", ["value-quantity"]),
    "number": ("RiskAssessment", ["probability"]),
    "uri": ("DocumentReference", ["location"]),
}
MODIFIERS = {
    "token": ["", ":not", ":text", ":missing", ":of-type", ":in", ":below"],
    "string": ["", ":exact", ":contains", ":missing"],
    "date": ["", ":missing"],
    "reference": ["", ":Patient", ":missing", ":identifier"],
    "quantity": ["", ":missing"],
    "number": ["", ":missing"],
    "uri": ["", ":below", ":above", ":missing"],
}
CASES = [
    (rtype, name, ptype, modifier)
    for ptype, (rtype, names) in BY_TYPE.items()
    for name in names
    for modifier in MODIFIERS[ptype]
]


def test_the_cases_cover_every_search_parameter_type() -> None:
    for ptype, (rtype, names) in BY_TYPE.items():
        for name in names:
            assert params_for(rtype)[name].type == ptype, (rtype, name)
    assert set(BY_TYPE) == {"token", "string", "date", "reference", "quantity", "number", "uri"}


@pytest.fixture
def two_patients(client: TestClient) -> tuple[str, str]:
    ids = []
    for family in ("Первая", "Вторая"):
        p = client.post("/fhir/Patient", json=factories.patient(family=family)).json()
        client.post("/fhir/Observation", json=factories.observation(p["id"]))
        ids.append(p["id"])
    return ids[0], ids[1]


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(resources)).scalar_one())


@pytest.mark.parametrize(
    ("rtype", "name", "ptype", "modifier"), CASES, ids=[f"{c[1]}{c[3]}" for c in CASES]
)
def test_payloads_in_a_search_parameter_match_nothing_and_break_nothing(
    client: TestClient, engine: Engine, two_patients: tuple[str, str], token: Callable[..., str],
    rtype: str, name: str, ptype: str, modifier: str,
) -> None:  # fmt: skip
    first, _second = two_patients
    before = _count(engine)
    as_patient = {"Authorization": f"Bearer {token('patient/*.rs', patient=first)}"}
    for payload in PAYLOADS:
        value = "true" if modifier == ":missing" else payload
        key = f"{name}{modifier}"
        r = client.get(f"/fhir/{rtype}", params={key: value, "_total": "accurate"})
        assert r.status_code in (200, 400), (key, payload, r.status_code, r.text[:300])
        if r.status_code == 200 and modifier not in (":missing", ":not"):
            assert r.json()["total"] == 0, (key, payload)  # nothing holds these values
        r = client.get(f"/fhir/{rtype}", params={key: value}, headers=as_patient)
        assert r.status_code in (200, 400), (key, payload, r.status_code)
        if r.status_code == 200:
            for entry in r.json().get("entry", []):
                res = entry["resource"]
                ref = res.get("subject", {}).get("reference", f"Patient/{res.get('id')}")
                assert ref == f"Patient/{first}", (key, payload, ref)
    assert _count(engine) == before
    assert {"resources", "resource_versions", "audit_log"} <= set(inspect(engine).get_table_names())


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_ids_chains_sorts_and_includes_are_refused_or_inert(
    client: TestClient, engine: Engine, two_patients: tuple[str, str], payload: str
) -> None:
    before = _count(engine)
    queries = [
        {"_id": payload},
        {"_lastUpdated": payload},
        {"subject:Patient.name": payload},
        {"subject.identifier": payload},
        {"_sort": payload},
        {"_sort": f"-{payload}"},
        {"_include": payload},
        {"_include": f"Observation:{payload}"},
        {"_revinclude": f"Provenance:{payload}"},
        {"_count": payload},
        {"_summary": payload},
        {"_elements": payload},
        {"_total": payload},
        {"code": "8867-4", "_has:Observation:subject:code": payload},
        {payload: "1"},
    ]
    for q in queries:
        r = client.get("/fhir/Observation", params=q)
        assert r.status_code in (200, 400), (q, r.status_code, r.text[:300])
        if r.status_code == 200 and "_elements" not in q:
            assert r.json().get("total", 0) in (0, None) or not r.json().get("entry"), q
    for url in (
        f"/fhir/Patient/{payload}",
        f"/fhir/Patient/{payload}/_history",
        f"/fhir/Patient/{payload}/$everything",
    ):
        r = client.get(url)
        assert r.status_code in (400, 404), (url, r.status_code)
    assert _count(engine) == before


def test_payloads_in_conditional_writes_do_not_match_everything(
    client: TestClient, engine: Engine, two_patients: tuple[str, str]
) -> None:
    for payload in PAYLOADS[:8]:
        r = client.post(
            "/fhir/Patient", json=factories.patient(), headers={"If-None-Exist": f"name={payload}"}
        )
        assert r.status_code in (201, 400), r.text  # created (no match), never "several match"
        r = client.delete("/fhir/Patient", params={"name": payload})
        assert r.status_code in (200, 204, 400, 404, 405, 412), r.status_code
    first, second = two_patients
    assert client.get(f"/fhir/Patient/{first}").status_code == 200
    assert client.get(f"/fhir/Patient/{second}").status_code == 200
