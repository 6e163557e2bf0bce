"""Entries entered in error: readable by id for staff, out of every list; withdrawn ones gone."""

from __future__ import annotations

from collections.abc import Callable

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


def test_entered_in_error_reads_back_by_id_but_leaves_searches_and_everything(
    client: TestClient,
) -> None:
    """R4 keeps an entered-in-error resource readable with that status (issue 21); the
    views that list a card's entries leave it out (issue 7)."""
    pid, kept, gone = _setup(client)
    read = client.get(f"/fhir/Immunization/{gone}")
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "entered-in-error"
    assert client.get(f"/fhir/Immunization/{gone}/_history/1").json()["status"] == "completed"
    history = client.get(f"/fhir/Immunization/{gone}/_history").json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["entered-in-error", "completed"]
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
    # nobody changes or deletes it any more
    assert client.delete(f"/fhir/Immunization/{gone}").status_code == 409
    body = {**read.json(), "status": "completed"}
    changed = client.put(f"/fhir/Immunization/{gone}", json=body)
    assert changed.status_code == 409, changed.text
    assert changed.json()["resourceType"] == "OperationOutcome"


def test_entered_in_error_is_not_found_for_the_patient(
    client: TestClient, token: Callable[..., str]
) -> None:
    pid, kept, gone = _setup(client)
    own = {"Authorization": f"Bearer {token('patient/*.rs', patient=pid)}"}
    assert client.get(f"/fhir/Immunization/{kept}", headers=own).status_code == 200
    assert client.get(f"/fhir/Immunization/{gone}", headers=own).status_code == 404
    assert client.get(f"/fhir/Immunization/{gone}/_history", headers=own).status_code == 404


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


def test_a_doctor_reads_an_entry_marked_entered_in_error_but_not_one_a_correction_withdrew(
    engine: Engine, demo: None, repo_of: Callable[[str], Repository]
) -> None:
    from medcard.corrections.effect import withdrawn
    from medcard.demo.accounts import DEMO_ORGANIZATION
    from tests.corrections.conftest import first, patient_id, system

    pid = patient_id(engine)
    ref = first(engine, "Immunization", pid)
    rtype, rid = ref.split("/")
    sys = system(engine)
    with sys.unit_of_work():  # the doctor's organisation manages the patient's record
        card = sys.read("Patient", pid).json()
        card["managingOrganization"] = {"reference": f"Organization/{DEMO_ORGANIZATION}"}
        sys.update("Patient", pid, card)
    doctor, patient = repo_of("doctor"), repo_of("patient")
    assert doctor.read(rtype, rid).json()["status"] != "entered-in-error"
    with sys.unit_of_work():
        current = sys.read(rtype, rid).json()
        sys.update(rtype, rid, withdrawn(current))
    assert doctor.read(rtype, rid).json()["status"] == "entered-in-error"
    assert len(doctor.history(rtype, rid)[0]) == 2
    with pytest.raises(FhirError) as err:
        patient.read(rtype, rid)
    assert err.value.status == 404
    # an accepted correction's withdrawal is recorded by a NULLIFY Provenance: gone for all
    with sys.unit_of_work():
        sys.create(
            {
                "resourceType": "Provenance",
                "target": [{"reference": f"{ref}/_history/2"}, {"reference": f"Patient/{pid}"}],
                "recorded": "2024-01-01T00:00:00Z",
                "activity": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                            "code": "NULLIFY",
                        }
                    ]
                },
                "agent": [{"who": {"display": "Комиссия"}}],
            }
        )
    for repo in (doctor, sys):
        with pytest.raises(FhirError) as err:
            repo.read(rtype, rid)
        assert err.value.status == 404
    sys.close()
