"""The extracts pages and the public verification page, over HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from medcard.config import Settings
from medcard.db.tables import resources
from medcard.extracts import verification
from tests.extracts.conftest import patient_of


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field"
    return m.group(1)


def _docs(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(resources)
                .where(resources.c.resource_type == "DocumentReference")
            ).scalar_one()
        )


def _make(c: TestClient, pid: str, **form: object) -> str:
    page = c.get(f"/card/{pid}/extracts")
    assert page.status_code == 200
    data = {"csrf_token": _csrf(page.text), **form}
    made = c.post(f"/card/{pid}/extracts", data=data)
    assert made.status_code == 303, made.text
    return made.headers["location"].split("requested=", 1)[1]


def test_patient_requests_lists_and_downloads_an_extract(
    engine: Engine, demo: None, inline_jobs: Settings, signed_in: Callable[[str], TestClient]
) -> None:
    c = signed_in("patient")
    pid = patient_of(engine, "patient")
    empty = c.get(f"/card/{pid}/extracts")
    assert "Выписок пока нет" in empty.text
    assert 'value="labs" checked' in empty.text
    xid = _make(c, pid, sections=["labs", "vaccinations"], start="2010-01-01", end="")
    listed = c.get(f"/card/{pid}/extracts?requested={xid}")
    assert "готова" in listed.text
    assert "Анализы, Прививки · с 01.01.2010" in listed.text
    assert "Refresh" not in listed.headers  # nothing is building
    pdf = c.get(f"/card/{pid}/extracts/{xid}.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert "attachment;" in pdf.headers["content-disposition"]
    bundle = c.get(f"/card/{pid}/extracts/{xid}.json")
    assert bundle.json()["type"] == "document"


def test_bad_forms_are_refused_with_a_reason_and_nothing_is_made(
    engine: Engine, demo: None, inline_jobs: Settings, signed_in: Callable[[str], TestClient]
) -> None:
    c = signed_in("patient")
    pid = patient_of(engine, "patient")
    token = _csrf(c.get(f"/card/{pid}/extracts").text)
    before = _docs(engine)
    cases = [
        ({}, "Выберите хотя бы один раздел"),
        ({"sections": ["labs"], "start": "2024-02-30"}, "Дата указана неверно"),
        (
            {"sections": ["labs"], "start": "2024-05-01", "end": "2024-01-01"},
            "Начало периода позже",
        ),
        ({"sections": ["bogus"]}, "неизвестный раздел"),
    ]
    for form, message in cases:
        r = c.post(f"/card/{pid}/extracts", data={"csrf_token": token, **form})
        assert r.status_code == 400, form
        assert message in r.text
    forged = c.post(f"/card/{pid}/extracts", data={"csrf_token": "forged", "sections": ["labs"]})
    assert forged.status_code == 403
    assert _docs(engine) == before


def test_another_patients_extracts_are_not_found_and_nothing_changes(
    engine: Engine, demo: None, inline_jobs: Settings, signed_in: Callable[[str], TestClient]
) -> None:
    owner = signed_in("patient")
    pid = patient_of(engine, "patient")
    xid = _make(owner, pid, sections=["diagnoses"])
    other = signed_in("parent")
    own_pid = patient_of(engine, "parent")
    before = _docs(engine)
    for url in (
        f"/card/{pid}/extracts",
        f"/card/{pid}/extracts/{xid}.pdf",
        f"/card/{pid}/extracts/{xid}.json",
        f"/card/{own_pid}/extracts/{xid}.pdf",  # their own card, someone else's extract
        f"/card/{own_pid}/extracts/nonexistent.pdf",
    ):
        r = other.get(url)
        assert r.status_code == 404, url
        assert "%PDF" not in r.text
    token = _csrf(other.get(f"/card/{own_pid}/extracts").text)
    r = other.post(f"/card/{pid}/extracts", data={"csrf_token": token, "sections": ["labs"]})
    assert r.status_code == 404
    assert _docs(engine) == before


def test_public_verification_page_by_code_and_by_file(
    engine: Engine,
    demo: None,
    inline_jobs: Settings,
    signed_in: Callable[[str], TestClient],
    app: object,
) -> None:
    c = signed_in("patient")
    pid = patient_of(engine, "patient")
    xid = _make(c, pid, sections=["diagnoses", "allergies"])
    pdf = c.get(f"/card/{pid}/extracts/{xid}.pdf").content
    code = re.search(rb"medcard-verify:([A-Z0-9]{10})", pdf)
    assert code
    code_text = code.group(1).decode()

    public = TestClient(app, base_url="http://testserver")  # nobody signed in
    page = public.get(f"/verify/{code_text}")
    assert page.status_code == 200
    assert "Выписка подлинная" in page.text
    assert "Диагнозы, Аллергии" in page.text
    assert "J45" not in page.text  # no diagnoses on the public page
    assert pid not in page.text
    assert "Выписка подлинная" in public.get("/verify", params={"code": code_text.lower()}).text
    typo = code_text[:-1] + ("2" if code_text[-1] != "2" else "3")
    assert "Код введён с ошибкой" in public.get(f"/verify/{typo}").text
    unknown = public.get(f"/verify/{verification.pretty(verification.new_code())}")
    assert "Выписка с таким кодом не найдена" in unknown.text

    form = public.get("/verify")
    token = _csrf(form.text)
    genuine = public.post(
        "/verify", data={"csrf_token": token}, files={"file": ("x.pdf", pdf, "application/pdf")}
    )
    assert "Файл совпадает с выданной выпиской" in genuine.text
    altered = pdf.replace(b"/Author (medcard)", b"/Author (hacker)")
    assert altered != pdf
    bad = public.post(
        "/verify", data={"csrf_token": token}, files={"file": ("x.pdf", altered, "application/pdf")}
    )
    assert "Файл изменён" in bad.text
    nothing = public.post("/verify", data={"csrf_token": token})
    assert nothing.status_code == 400
    assert "Выберите файл" in nothing.text
    no_csrf = public.post("/verify", files={"file": ("x.pdf", pdf, "application/pdf")})
    assert no_csrf.status_code == 403
    public.close()


def test_region_without_extracts_refuses_them_and_keeps_those_made(
    engine: Engine, demo: None, inline_jobs: Settings, signed_in: Callable[[str], TestClient]
) -> None:
    from medcard.regions.features import ALL_FEATURES, Feature
    from medcard.regions.gate import patient_region
    from tests.regions.world import set_features

    c = signed_in("patient")
    pid = patient_of(engine, "patient")
    xid = _make(c, pid, sections=["labs"], start="", end="")
    token = _csrf(c.get(f"/card/{pid}/extracts").text)
    region = patient_region(engine, pid)
    assert region.config is not None
    set_features(engine, region.config.code, ALL_FEATURES - {Feature.EXTRACTS})
    before = _docs(engine)

    off = c.get(f"/card/{pid}/extracts")
    assert off.status_code == 403
    assert region.config.name in off.text
    tried = c.post(f"/card/{pid}/extracts", data={"csrf_token": token, "sections": ["labs"]})
    assert tried.status_code == 403
    assert _docs(engine) == before
    assert c.get(f"/card/{pid}/extracts/{xid}.pdf").status_code == 200  # not taken away
