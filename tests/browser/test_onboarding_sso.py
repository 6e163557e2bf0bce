"""SSO route in real Chromium against the real OpenID Connect provider (tests/sso):
sign in → consent → request documents → they arrive from the background job → the card;
then the consent is revoked and what arrived stays listed."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.browser.conftest import PHONE, shoot
from tests.onboarding.conftest import make_card
from tests.sso.conftest import MATCHED_SNILS, oidc_issuer, sso_port, sso_server, sso_settings

__all__ = ["oidc_issuer", "sso_port", "sso_server", "sso_settings"]  # fixtures used here


def _through_provider(page: Page, app: str, login: str) -> None:
    """The provider's own sign-in and consent forms, as a person fills them."""
    for _ in range(6):
        if page.url.startswith(app):
            return
        if page.locator("input[name=login]").count():
            page.fill("input[name=login]", login)
            page.fill("input[name=password]", "any password will do")
        page.locator("button[type=submit]").first.click()
        page.wait_for_load_state()
    raise AssertionError(f"the provider did not send the browser back: {page.url}")


def test_sso_patient_consents_and_receives_documents(
    page: Page, sso_server: str, engine: Engine, new_page: Any
) -> None:
    pid = make_card(engine, snils=MATCHED_SNILS, org="")
    page.goto(sso_server + "/auth/sso/77/login")
    _through_provider(page, sso_server, "ivanova")
    expect(page).to_have_url(re.compile(r"/access/consent$"))
    expect(
        page.get_by_role("heading", name="Согласие на обработку персональных данных")
    ).to_be_visible()
    shoot(page, "onboarding-consent")
    page.get_by_role("button", name="Дать согласие").click()  # without the tick: refused
    expect(page).to_have_url(re.compile(r"/access/consent$"))
    page.get_by_label("Я прочитал(а) текст").check()
    page.get_by_role("button", name="Дать согласие").click()
    expect(page).to_have_url(re.compile(r"/access/documents\?notice=consent_given$"))
    shoot(page, "onboarding-documents-form")

    page.get_by_label("Результаты анализов").check()
    page.get_by_label("Справки и медицинские заключения").check()
    page.get_by_role("button", name="Запросить").click()
    expect(page.get_by_role("status")).to_contain_text("Запрос принят")
    # The background job delivers; the page shows the status after a reload.
    for _ in range(40):
        if page.locator("text=Документы получены").count() == 2:
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(page.locator("text=Документы получены")).to_have_count(2)
    expect(page.locator("text=Срок").first).to_be_visible()
    shoot(page, "onboarding-documents-delivered")

    page.get_by_role("link", name="Общий анализ крови — 2024-05-14").click()
    expect(page).to_have_url(re.compile(rf"/card/{pid}/entry/DiagnosticReport/"))
    shoot(page, "onboarding-document-in-card")

    page.goto(sso_server + "/access/consent")
    page.get_by_role("button", name="Отозвать согласие").click()
    expect(page.get_by_role("status")).to_contain_text("Согласие отозвано")
    shoot(page, "onboarding-consent-revoked")
    page.goto(sso_server + "/access/documents")
    expect(page.get_by_role("alert")).to_contain_text("только с действующим согласием")
    expect(page.get_by_role("link", name="Общий анализ крови — 2024-05-14")).to_be_visible()
    page.set_viewport_size(PHONE)
    shoot(page, "onboarding-documents-after-revocation-phone")
