"""The store hides entries withdrawn as entered-in-error on every path, once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository

SNILS = "112-233-445 95"


def _setup(client: TestClient) -> tuple[str, str, str]:
    pid = client.post(
        "/fhir/Patient",
        json={
            "resourceType": "Patient",
            "name": [{"family": "Иванов", "given": ["Иван"]}],
            "identifier": [{"system": "urn:oid:1.2.643.100.3", "value": SNILS}],
        },
    ).json()["id"]
    imm = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"text": "Корь"},
        "patient": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": "2020-05-01",
    }
    kept = client.post("/fhir/Immunization", json=imm).json()["id"]
    gone = client.post("/fhir/Immunization", json=imm).json()
    gone["status"] = "entered-in-error"
    assert client.put(f"/fhir/Immunization/{gone['id']}", json=gone).status_code == 200
    return pid, kept, gone["id"]


def test_withdrawn_entry_is_gone_from_every_api_path(client: TestClient) -> None:
    pid, kept, gone = _setup(client)
    assert client.get(f"/fhir/Immunization/{gone}").status_code == 404
    assert client.get(f"/fhir/Immunization/{gone}/_history/1").status_code == 404
    assert client.get(f"/fhir/Immunization/{gone}/_history").status_code == 404
    for url in (
        f"/fhir/Immunization?patient={pid}",
        "/fhir/Immunization",
        f"/fhir/Immunization?_id={gone}",
        f"/fhir/Patient?_id={pid}&_revinclude=Immunization:patient",
        "/fhir/Immunization/_history",
        "/fhir/_history",
        f"/fhir/Patient/{pid}/$everything",
    ):
        body = client.get(url).json()
        ids = {e["resource"]["id"] for e in body.get("entry", []) if "resource" in e}
        assert gone not in ids, url
    assert kept in {
        e["resource"]["id"] for e in client.get(f"/fhir/Immunization?patient={pid}").json()["entry"]
    }
    total = client.get("/fhir/Immunization?status=entered-in-error&_summary=count").json()
    assert total["total"] == 0
    # nobody changes or deletes it any more: it is not found
    assert client.delete(f"/fhir/Immunization/{gone}").status_code == 404


def test_auditor_reads_it_and_purge_needs_a_withdrawn_entry(
    engine: Engine, client: TestClient
) -> None:
    pid, kept, gone = _setup(client)
    auditor = Repository(engine, AccessContext.system())
    auditor.include_hidden = True
    assert auditor.read("Immunization", gone).json()["status"] == "entered-in-error"
    assert len(auditor.history("Immunization", gone)[0]) == 2
    with pytest.raises(FhirError) as err, auditor.unit_of_work():
        auditor.purge("Immunization", kept, "test")
    assert err.value.status == 409
    patient = Repository(
        engine,
        AccessContext(
            actor=f"Patient/{pid}",
            scopes=Scopes.parse("patient/*.cruds"),
            patient_ids=frozenset({pid}),
            role=Role.PATIENT,
        ),
    )
    with pytest.raises(FhirError) as err, patient.unit_of_work():
        patient.purge("Immunization", gone, "test")
    assert err.value.status == 403
    with auditor.unit_of_work():
        auditor.purge("Immunization", gone, "order of an authority")
    versions = auditor.history("Immunization", gone)[0]
    assert all("vaccineCode" not in v.stored.json() for v in versions)
    assert all(v.stored.json()["status"] == "entered-in-error" for v in versions)
    auditor.close()
    patient.close()
