"""Clinician forms take and show dates as ДД.ММ.ГГГГ (ЧЧ:ММ), whatever the browser's
locale; ISO is accepted too; a date in another form is refused in Russian (issue 20)."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.fhir.store.repository import Repository
from tests.workspace.conftest import csrf_of

VISIT = {
    "visit_kind": "visit",
    "complaints": "Кашель",
    "examination": "Зев гиперемирован",
    "diagnosis": "J06.9",
}


def _post(doc: TestClient, pid: str, kind: str, data: dict[str, str]) -> object:
    form = doc.get(f"/workspace/patients/{pid}/new/{kind}")
    assert form.status_code == 200, form.text
    submission = re.search(r'name="submission" value="([^"]+)"', form.text)
    assert submission
    return doc.post(
        f"/workspace/patients/{pid}/new/{kind}",
        data={"csrf_token": csrf_of(form.text), "submission": submission.group(1), **data},
    )


def test_the_visit_form_draws_date_fields_as_russian_text(
    patient_id: str, signed_in: Callable[[str], TestClient]
) -> None:
    doc = signed_in("doctor")
    html = doc.get(f"/workspace/patients/{patient_id}/new/visit").text
    assert 'type="datetime-local"' not in html
    assert 'type="date"' not in html
    field = re.search(r'<input id="f-date"[^>]*>', html)
    assert field, html
    assert 'type="text"' in field.group(0)
    assert 'placeholder="ДД.ММ.ГГГГ ЧЧ:ММ"' in field.group(0)
    assert "pattern=" in field.group(0)
    assert "например 01.03.2026 09:30" in html
    certificate = doc.get(f"/workspace/patients/{patient_id}/new/certificate").text
    issued = re.search(r'<input id="f-issued"[^>]*>', certificate)
    assert issued, certificate
    assert 'placeholder="ДД.ММ.ГГГГ"' in issued.group(0)


def test_a_visit_dated_in_russian_form_is_stored_and_shown_so(
    patient_id: str, signed_in: Callable[[str], TestClient], repo_of: Callable[[str], Repository]
) -> None:
    doc = signed_in("doctor")
    r = _post(doc, patient_id, "visit", {**VISIT, "date": "03.02.2025 10:05"})
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    location = r.headers["location"]  # type: ignore[attr-defined]
    rtype, rid = location.split("/entry/")[1].split("?")[0].split("/")
    stored = repo_of("doctor").read(rtype, rid).json()
    assert stored["period"]["start"] == "2025-02-03T10:05:00+03:00"
    page = doc.get(location).text
    assert "03.02.2025 10:05" in page
    assert "2025-02-03" not in re.sub(r'datetime="[^"]*"', "", page)


def test_iso_dates_are_still_accepted(
    patient_id: str, signed_in: Callable[[str], TestClient], repo_of: Callable[[str], Repository]
) -> None:
    doc = signed_in("doctor")
    r = _post(doc, patient_id, "visit", {**VISIT, "date": "2025-02-04T11:00"})
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    r = _post(
        doc,
        patient_id,
        "certificate",
        {"document_type": "pool", "issued": "01.05.2025", "conclusion": "Противопоказаний нет"},
    )
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]


def test_a_date_in_another_form_is_refused_in_russian(
    patient_id: str, signed_in: Callable[[str], TestClient]
) -> None:
    doc = signed_in("doctor")
    for typed in ("02/03/2025 10:00", "31.02.2025 10:00", "вчера"):
        r = _post(doc, patient_id, "visit", {**VISIT, "date": typed})
        assert r.status_code == 400, typed  # type: ignore[attr-defined]
        text = r.text  # type: ignore[attr-defined]
        assert "введите ДД.ММ.ГГГГ ЧЧ:ММ" in text, typed
        assert f'value="{typed}"' in text  # what was typed stays to be corrected
    r = _post(
        doc,
        patient_id,
        "certificate",
        {"document_type": "pool", "issued": "05/01/2025", "conclusion": "Нет"},
    )
    assert r.status_code == 400  # type: ignore[attr-defined]
    assert "введите ДД.ММ.ГГГГ, например 01.03.2026" in r.text  # type: ignore[attr-defined]


def test_patients_are_found_and_listed_by_a_russian_birth_date(
    patient_id: str,
    signed_in: Callable[[str], TestClient],
    repo_of: Callable[[str], Repository],
    engine: Engine,
) -> None:
    patient = repo_of("doctor").read("Patient", patient_id).json()
    family = patient["name"][0]["family"]
    y, m, d = patient["birthDate"].split("-")
    doc = signed_in("doctor")
    found = doc.get("/workspace/search", params={"q": family, "birth_date": f"{d}.{m}.{y}"})
    assert found.status_code == 200
    assert f"/workspace/patients/{patient_id}" in found.text
    assert f"<td>{d}.{m}.{y}</td>" in found.text
    iso = doc.get("/workspace/search", params={"q": family, "birth_date": f"{y}-{m}-{d}"})
    assert f"/workspace/patients/{patient_id}" in iso.text
    bad = doc.get("/workspace/search", params={"q": family, "birth_date": f"{m}/{d}/{y}"})
    assert bad.status_code == 400
    assert "введите ДД.ММ.ГГГГ" in bad.text
    card = doc.get(f"/workspace/patients/{patient_id}").text
    assert f"{d}.{m}.{y}" in card
    assert accounts.get_by_login(engine, "doctor@medcard.example") is not None
