"""Labs deliver results against referrals addressed to them; the clinician gate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard import entries
from medcard.db.tables import audit_log
from medcard.fhir.store.repository import Repository
from medcard.signing import KeyStore
from tests.workspace.conftest import csrf_of

LAB = "org-77-ckdl"


def _order(repo: Repository, keys: KeyStore, pid: str, performer: str = LAB) -> str:
    done = entries.submit(
        repo,
        keys,
        "lab_order",
        pid,
        {"panel": "cbc", "performer": performer, "priority": "routine"},
        uuid.uuid4().hex,
    )
    return done.main.id


def _results(pid: str, order: str) -> dict[str, Any]:
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "Гемоглобин"},
        "subject": {"reference": f"Patient/{pid}"},
        "basedOn": [{"reference": f"ServiceRequest/{order}"}],
        "valueQuantity": {
            "value": 135,
            "unit": "г/л",
            "system": "http://unitsofmeasure.org",
            "code": "g/L",
        },
    }
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}
        ],
        "code": {"text": "Общий (клинический) анализ крови"},
        "subject": {"reference": f"Patient/{pid}"},
        "basedOn": [{"reference": f"ServiceRequest/{order}"}],
        "issued": "2026-01-10T12:00:00+03:00",
        "performer": [{"reference": f"Organization/{LAB}", "display": "ЦКДЛ"}],
        "result": [{"reference": "urn:uuid:0b7c1c0e-7a39-4c1b-9f4c-1f4f1c0e7a39"}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b7c1c0e-7a39-4c1b-9f4c-1f4f1c0e7a39",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            },
            {"resource": report, "request": {"method": "POST", "url": "DiagnosticReport"}},
        ],
    }


def _lab(api: Callable[..., TestClient], org: str) -> TestClient:
    return api(
        "system/Observation.cru system/DiagnosticReport.cru system/ServiceRequest.rs",
        subject=f"Client/{org}",
        extra={"role": "lab", "orgs": [org]},
    )


def test_lab_delivers_results_the_referring_doctor_sees(
    patient_id: str,
    repo_of: Callable[[str], Repository],
    keys: KeyStore,
    api: Callable[..., TestClient],
    signed_in: Callable[[str], TestClient],
) -> None:
    order = _order(repo_of("doctor"), keys, patient_id)
    lab = _lab(api, LAB)
    assert lab.get(f"/fhir/ServiceRequest/{order}").status_code == 200
    r = lab.post("/fhir", json=_results(patient_id, order))
    assert r.status_code == 200, r.text
    doctor = signed_in("doctor")
    page = doctor.get("/workspace/referrals")
    assert "Результат получен" in page.text
    assert "ЦКДЛ" in page.text


def test_a_lab_cannot_post_results_for_a_referral_not_addressed_to_it(
    patient_id: str,
    repo_of: Callable[[str], Repository],
    keys: KeyStore,
    api: Callable[..., TestClient],
) -> None:
    order = _order(repo_of("doctor"), keys, patient_id)
    other = _lab(api, "org-78-ckdl")
    r = other.post("/fhir", json=_results(patient_id, order))
    assert r.status_code in (403, 404), r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    unbased = _results(patient_id, order)
    for e in unbased["entry"]:
        e["resource"].pop("basedOn")
    r = _lab(api, LAB).post("/fhir", json=unbased)
    assert r.status_code == 403
    assert "basedOn" in r.text


def test_another_organisations_doctor_is_refused_and_break_glass_is_shown_to_the_patient(
    patient_id: str,
    api: Callable[..., TestClient],
    engine: Engine,
) -> None:
    stranger = api(
        "user/*.cruds",
        subject="Practitioner/prac-78-gp1-therapist-1",
        extra={"role": "practitioner", "orgs": ["org-78-gp1"]},
    )
    assert stranger.get(f"/fhir/Patient/{patient_id}").status_code == 404
    assert stranger.get(f"/fhir/Condition?patient={patient_id}").json().get("total", 0) in (0, None)
    r = stranger.post(
        f"/fhir/Patient/{patient_id}/$break-glass",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "reason", "valueString": "Доставлен без сознания, нужна история болезни"}
            ],
        },
    )
    assert r.status_code in (200, 201), r.text
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.patient_id == patient_id, audit_log.c.emergency.is_(True)
            )
        ).all()
    assert any("без сознания" in detail for _, detail in rows)


def test_workspace_search_offers_emergency_access_for_unrelated_cards(
    demo: None,
    engine: Engine,
    signed_in: Callable[[str], TestClient],
) -> None:
    from medcard import identifiers as ids
    from medcard.access.context import AccessContext
    from medcard.fhir.search.params import parse

    repo = Repository(engine, AccessContext.system())
    try:
        patients = repo.search(parse("Patient", [("_count", "50")])).matches
    finally:
        repo.close()
    doctor = signed_in("doctor")
    hidden = [p for p in patients if doctor.get(f"/workspace/patients/{p.id}").status_code == 404]
    assert hidden, "the demo has patients of other polyclinics"
    target = hidden[0]
    snils = next(i["value"] for i in target.json()["identifier"] if i["system"] == ids.SNILS_SYSTEM)
    page = doctor.get("/workspace/search", params={"q": snils})
    assert "Экстренный доступ" in page.text
    assert target.json()["name"][0]["family"] not in page.text  # nothing shown before the grant
    short = doctor.post(
        f"/workspace/patients/{target.id}/emergency",
        data={"csrf_token": csrf_of(page.text), "reason": "срочно"},
    )
    assert short.status_code == 400
    r = doctor.post(
        f"/workspace/patients/{target.id}/emergency",
        data={"csrf_token": csrf_of(page.text), "reason": "Пациент в реанимации, нужна история"},
    )
    assert r.status_code == 303
    card = doctor.get(r.headers["location"])
    assert card.status_code == 200
    assert "экстренному доступу" in card.text
