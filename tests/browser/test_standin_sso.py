"""«Войти через Госуслуги» in real Chromium on the demo app, with the demo's own stand-in
identity provider (MEDCARD_STANDIN_IDP, as ``serve --demo``), no hand configuration:
landing page → «Войти через Госуслуги» → the stand-in's person picker → consent → card."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.auth import accounts
from tests.browser.conftest import shoot
from tests.sso.conftest import standin_app

__all__ = ["standin_app"]  # the fixture used here


def test_demo_patient_signs_in_through_the_demo_standin_and_sees_the_card(
    page: Page, standin_app: str, engine: Engine, demo: None
) -> None:
    account = accounts.get_by_login(engine, "patient@medcard.example")
    assert account is not None
    name, pid = account.display_name, account.fhir_ref.removeprefix("Patient/")

    page.goto(standin_app + "/")
    page.get_by_role("link", name="Войти через Госуслуги").click()
    page.get_by_role("link", name="Войти через Госуслуги (г. Москва)").click()

    # The stand-in's own page, labelled as what it is.
    expect(page).to_have_url(re.compile(r"/standin-idp/authorize\?"))
    expect(page.get_by_role("note")).to_contain_text("Тестовый поставщик (заглушка) — не Госуслуги")
    expect(page.get_by_role("button", name="Новикова Алина Сергеевна")).to_be_visible()
    shoot(page, "standin-idp-picker")
    page.get_by_role("button", name=name).click()

    # Back in medcard: an SSO account consents to the processing of personal data first.
    expect(page).to_have_url(re.compile(r"/access/consent$"))
    page.get_by_label("Я прочитал(а) текст").check()
    page.get_by_role("button", name="Дать согласие").click()
    expect(page).to_have_url(re.compile(r"/access/documents"))

    page.goto(standin_app + "/card")
    expect(page).to_have_url(re.compile(rf"/card/{re.escape(pid)}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Медицинская карта")
    expect(page.locator("main")).to_contain_text(name.split()[0])
    shoot(page, "standin-idp-card")
