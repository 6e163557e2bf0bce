"""The pages: a patient files from an entry, a reviewer decides, the author is told;
refusals are readable pages and change nothing."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.corrections import service
from tests.corrections.conftest import first, patient_id, system

Client = Callable[[str], TestClient]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "form without a CSRF token"
    return found.group(1)


def _file(c: TestClient, pid: str, data: dict[str, object], files: object = None) -> object:
    form = c.get(f"/card/{pid}/reports/new")
    assert form.status_code == 200
    return c.post(
        f"/card/{pid}/reports", data={"csrf_token": _csrf(form.text), **data}, files=files
    )


def test_patient_files_reviewer_decides_author_sees(
    engine: Engine, demo: None, signed_in: Client, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    ref = first(engine, "Immunization", pid)
    patient = signed_in("patient")
    form = patient.get(f"/card/{pid}/reports/new?entry={ref}")
    assert form.status_code == 200
    assert f'value="{ref}" checked' in form.text
    made = patient.post(
        f"/card/{pid}/reports",
        data={
            "csrf_token": _csrf(form.text),
            "entry": [ref],
            "problem": "did-not-happen",
            "authority": "clinic",
            "comment": "Не делали",
        },
        files=[("files", ("scan.png", PNG, "image/png"))],
    )
    assert made.status_code == 303, made.text
    tid = made.headers["location"].split("/reports/")[1].split("?")[0]
    listing = patient.get(f"/card/{pid}/reports")
    assert tid in listing.text
    assert "подано" in listing.text
    reviewer = signed_in(clinic_reviewer)
    queue = reviewer.get("/review")
    assert queue.status_code == 200
    assert f"/review/{tid}" in queue.text
    detail = reviewer.get(f"/review/{tid}")
    assert detail.status_code == 200
    assert "Не делали" in detail.text
    assert "scan.png" in detail.text
    bid = re.search(rf"/review/{tid}/files/([\w-]+)", detail.text).group(1)  # type: ignore[union-attr]
    assert reviewer.get(f"/review/{tid}/files/{bid}").content == PNG
    decided = reviewer.post(
        f"/review/{tid}/decide",
        data={"csrf_token": _csrf(detail.text), "decision": "accepted", "reason": "Подтверждено"},
    )
    assert decided.status_code == 303, decided.text
    page = patient.get(f"/card/{pid}/reports/{tid}")
    assert "удовлетворено" in page.text
    assert "удалена из карты" in page.text
    assert patient.get(f"/card/{pid}/entry/{ref}").status_code == 404
    assert reviewer.get("/review/figures").status_code == 200
    # deciding again is refused, readably
    again = reviewer.post(
        f"/review/{tid}/decide",
        data={"csrf_token": _csrf(detail.text), "decision": "rejected", "reason": "x"},
    )
    assert again.status_code == 409
    assert "уже принято решение" in again.text


def test_refusals_are_pages_and_change_nothing(
    engine: Engine, demo: None, signed_in: Client, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    other = patient_id(engine, "parent")
    ref = first(engine, "Immunization", pid)
    patient = signed_in("patient")
    none = _file(patient, pid, {"problem": "did-not-happen", "authority": "clinic"})
    assert none.status_code == 422
    assert "хотя бы одну" in none.text
    theirs = _file(
        patient,
        pid,
        {
            "entry": [first(engine, "Immunization", other)],
            "problem": "not-mine",
            "authority": "clinic",
        },
    )
    assert theirs.status_code == 422
    assert "Такой записи в этой карте нет" in theirs.text
    exe = _file(
        patient,
        pid,
        {"entry": [ref], "problem": "did-not-happen", "authority": "clinic"},
        files=[("files", ("photo.png", b"MZ\x90\x00not an image", "image/png"))],
    )
    assert exe.status_code == 422
    assert "PDF, JPEG и PNG" in exe.text
    assert service.patient_reports(system(engine), pid) == []
    # another patient's card and the reviewer desk are not the patient's
    assert patient.get(f"/card/{other}/reports").status_code == 404
    assert patient.get("/review").status_code == 403
    ok = _file(patient, pid, {"entry": [ref], "problem": "did-not-happen", "authority": "ministry"})
    assert ok.status_code == 303  # type: ignore[attr-defined]
    tid = ok.headers["location"].split("/reports/")[1].split("?")[0]  # type: ignore[attr-defined]
    dup = _file(patient, pid, {"entry": [ref], "problem": "did-not-happen", "authority": "clinic"})
    assert dup.status_code == 409
    assert "уже есть обращение" in dup.text
    # the polyclinic's reviewer cannot open the ministry's report
    assert signed_in(clinic_reviewer).get(f"/review/{tid}").status_code == 404
    assert signed_in("reviewer-ministry").get(f"/review/{tid}").status_code == 200


def test_author_clinician_answers_a_question(
    engine: Engine, demo: None, signed_in: Client, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    ref = first(engine, "Immunization", pid, ("performer:missing", "false"))
    patient = signed_in("patient")
    ok = _file(patient, pid, {"entry": [ref], "problem": "did-not-happen", "authority": "clinic"})
    tid = ok.headers["location"].split("/reports/")[1].split("?")[0]  # type: ignore[attr-defined]
    reviewer = signed_in(clinic_reviewer)
    detail = reviewer.get(f"/review/{tid}")
    asked = reviewer.post(
        f"/review/{tid}/ask",
        data={
            "csrf_token": _csrf(detail.text),
            "to": "author",
            "question": "Есть ли запись в журнале?",
        },
    )
    assert asked.status_code == 303
    author = system(engine).read(*ref.split("/")).json()["performer"][0]["actor"]["reference"]
    accounts.create_account(
        engine, "author@medcard.example", "x" * 12, accounts.Role.PRACTITIONER, fhir_ref=author
    )
    doctor = signed_in("author")
    view = doctor.get("/workspace/corrections")
    assert view.status_code == 200
    assert "Есть ли запись в журнале?" in view.text
    answered = doctor.post(
        f"/workspace/corrections/{tid}/answer",
        data={"csrf_token": _csrf(view.text), "text": "В журнале записи нет"},
    )
    assert answered.status_code == 303
    assert "В журнале записи нет" in reviewer.get(f"/review/{tid}").text
