"""Quick check that each workspace page renders for the role it serves."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.workspace.conftest import csrf_of


def test_registrar_attaches_and_doctor_writes(
    demo: None, signed_in: Callable[[str], TestClient]
) -> None:
    reg = signed_in("registrar")
    page = reg.get("/workspace/attach")
    assert page.status_code == 200, page.text
    r = reg.post(
        "/workspace/attach",
        data={
            "csrf_token": csrf_of(page.text),
            "family": "Смирнова",
            "given": "Анна",
            "middle": "Петровна",
            "birth_date": "1990-03-04",
            "gender": "female",
            "snils": "112-233-445 95",
            "practitioner": "prac-77-gp12-therapist-1",
        },
    )
    assert r.status_code == 303, r.text
    pid = r.headers["location"].split("/")[3]
    hist = reg.get(r.headers["location"])
    assert "Смирнова" in hist.text
    assert "действует" in hist.text
    doc = signed_in("doctor")
    card = doc.get(f"/workspace/patients/{pid}")
    assert card.status_code == 200, card.text
    for kind in (
        "visit",
        "diagnosis",
        "allergy",
        "prescription",
        "lab_order",
        "lab_result",
        "imaging",
        "vaccination",
        "exam",
        "referral",
        "certificate",
    ):
        form = doc.get(f"/workspace/patients/{pid}/new/{kind}")
        assert form.status_code == 200, (kind, form.text[-2000:])
    form = doc.get(f"/workspace/patients/{pid}/new/visit")
    r = doc.post(
        f"/workspace/patients/{pid}/new/visit",
        data={
            "csrf_token": csrf_of(form.text),
            "submission": "a" * 32,
            "date": "2025-02-03T10:00",
            "visit_kind": "visit",
            "complaints": "Кашель",
            "examination": "Зев гиперемирован",
            "diagnosis": "J06.9",
        },
    )
    assert r.status_code == 303, r.text
    entry = doc.get(r.headers["location"])
    assert entry.status_code == 200, entry.text
    assert "подписано, подпись верна" in entry.text
    card = doc.get(f"/workspace/patients/{pid}")
    assert "Протокол консультации" in card.text, card.text
    assert doc.get("/workspace/referrals").status_code == 200
    assert doc.get("/workspace/lookup/icd10?q=J06").json()[0]["code"].startswith("J06")
