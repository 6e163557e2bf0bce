"""In a browser set to en-US, the visit form still takes and shows ДД.ММ.ГГГГ ЧЧ:ММ
(issue 20, item 4): no mm/dd/yyyy date picker, the browser's own check follows the
Russian format, and the saved visit reads in Russian form."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard import attachment
from medcard.access.context import AccessContext
from medcard.auth import accounts
from medcard.entries import FormError
from medcard.fhir.store.repository import Repository
from tests.browser.conftest import shoot, sign_in_demo


def _attached_patient(engine: Engine) -> str:
    patient = accounts.get_by_login(engine, "patient@medcard.example")
    assert patient is not None
    pid = patient.fhir_ref.split("/", 1)[1]
    repo = Repository(engine, AccessContext.system())
    try:
        attachment.attach(repo, "org-77-gp12", patient_id=pid)
    except FormError as exc:
        if exc.fields() != {"organization"}:  # anything but "already attached there"
            raise
    finally:
        repo.close()
    return pid


def test_visit_form_in_an_en_us_browser_uses_russian_dates(
    new_page: Callable[..., Page], live_server: str, demo: None, engine: Engine
) -> None:
    pid = _attached_patient(engine)
    page = new_page(locale="en-US")
    assert page.evaluate("navigator.language") == "en-US"
    sign_in_demo(page, live_server, "doctor")
    page.goto(f"{live_server}/workspace/patients/{pid}/new/visit")
    when = page.get_by_label("Дата и время")
    expect(when).to_have_attribute("type", "text")
    expect(when).to_have_attribute("placeholder", "ДД.ММ.ГГГГ ЧЧ:ММ")
    # the browser's own validation follows the Russian format, not its locale's
    when.fill("02/03/2025 10:05")
    assert when.evaluate("el => el.checkValidity()") is False
    when.fill("03.02.2025 10:05")
    assert when.evaluate("el => el.checkValidity()") is True
    page.get_by_label("Вид приёма").select_option("visit")
    page.get_by_label("Жалобы").fill("Кашель")
    page.get_by_label("Объективный осмотр").fill("Зев гиперемирован")
    page.get_by_label("Диагноз (МКБ-10)").fill("J06.9")
    shoot(page, "workspace-visit-form-en-us")
    page.get_by_role("button", name="Подписать и сохранить").click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("03.02.2025 10:05")
    # and on the card, the visit's day in Russian form
    page.goto(f"{live_server}/workspace/patients/{pid}")
    expect(page.locator("time", has_text="03.02.2025").first).to_be_visible()
