"""Registration route in real Chromium: a fresh account, the identity check, the access
request (approved at once, or by the registrar) and the medical card."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.fhir.store.repository import Repository
from medcard.identifiers import (
    PASSPORT_SYSTEM,
    SNILS_SYSTEM,
    format_passport,
    format_snils,
    make_snils,
)
from tests.browser.conftest import PHONE, shoot, sign_in_demo
from tests.onboarding.conftest import make_card

PASSWORD = "ochen-nadezhnyi-parol"


def _fill_identity(page: Page, patient: dict[str, Any]) -> None:
    ids = {i["system"]: i["value"] for i in patient["identifier"]}
    name = patient["name"][0]
    born = patient["birthDate"].split("-")
    page.get_by_label("СНИЛС").fill(format_snils(ids[SNILS_SYSTEM]))
    page.get_by_label("Фамилия").fill(name["family"].upper())
    page.get_by_label("Имя", exact=True).fill(name["given"][0])
    page.get_by_label("Отчество").fill(name["given"][1] if len(name["given"]) > 1 else "")
    page.get_by_label("Дата рождения").fill(".".join(reversed(born)))
    page.get_by_label("Серия и номер паспорта").fill(format_passport(ids[PASSPORT_SYSTEM]))


def _register(page: Page, base: str, login: str) -> None:
    page.goto(base + "/register")
    expect(page.get_by_role("heading", name="Регистрация")).to_be_visible()
    shoot(page, "onboarding-register")
    page.get_by_label("Электронная почта или телефон").fill(login)
    page.get_by_label("Пароль", exact=True).fill(PASSWORD)
    page.get_by_label("Пароль ещё раз").fill(PASSWORD)
    page.get_by_role("button", name="Зарегистрироваться").click()
    expect(page).to_have_url(re.compile(r"/access\?notice=registered$"))


def test_fresh_account_confirms_identity_and_opens_the_card(
    page: Page, live_server: str, demo: None, engine: Engine, new_page: Any
) -> None:
    # A card nobody has claimed yet (the demo's adults all have accounts).
    pid = make_card(engine, snils=make_snils("556677889"), org="")
    patient = Repository(engine, AccessContext.system()).read("Patient", pid).json()
    _register(page, live_server, "+7 916 555-01-02")
    shoot(page, "onboarding-access-form")

    # A typo first: one field named, nothing changes.
    _fill_identity(page, patient)
    page.get_by_label("Дата рождения").fill("01.01.1950")
    page.get_by_role("button", name="Проверить данные").click()
    expect(page.get_by_role("heading", name="Одно поле не совпадает")).to_be_visible()
    expect(page.locator("td.ob-mismatch")).to_contain_text("не совпадает")
    shoot(page, "onboarding-access-partial")
    page.get_by_role("link", name="Изменить данные и проверить заново").click()

    _fill_identity(page, patient)
    page.get_by_role("button", name="Проверить данные").click()
    expect(page.get_by_role("heading", name="Данные совпали")).to_be_visible()
    shoot(page, "onboarding-access-matched")
    page.get_by_role("button", name="Подать запрос на доступ").click()
    expect(page.get_by_role("heading", name="Медицинская карта открыта")).to_be_visible()
    shoot(page, "onboarding-access-granted")
    page.get_by_role("link", name="Открыть медицинскую карту").click()
    expect(page).to_have_url(re.compile(rf"/card/{pid}$"))
    shoot(page, "onboarding-card-after-registration")

    phone = new_page(viewport=PHONE)
    phone.goto(live_server + "/register")
    shoot(phone, "onboarding-register-phone")


def test_card_with_an_account_is_opened_by_the_registrar(
    page: Page, live_server: str, demo: None, engine: Engine, new_page: Any
) -> None:
    # The person has a new passport the card does not know yet: one field differs, and
    # a registrar checks the documents and decides.
    pid = make_card(engine, snils=make_snils("667788990"), org="")
    patient = Repository(engine, AccessContext.system()).read("Patient", pid).json()
    _register(page, live_server, "new-passport@example.org")
    _fill_identity(page, patient)
    page.get_by_label("Серия и номер паспорта").fill("45 21 654321")
    page.get_by_role("button", name="Проверить данные").click()
    expect(page.get_by_role("heading", name="Одно поле не совпадает")).to_be_visible()
    page.get_by_role("button", name="Подать запрос на доступ").click()
    expect(page.get_by_role("heading", name="Запрос на рассмотрении")).to_be_visible()
    expect(page.get_by_role("button", name="Проверить данные")).to_have_count(0)
    shoot(page, "onboarding-access-pending")

    desk = new_page()
    sign_in_demo(desk, live_server, "registrar")
    desk.goto(live_server + "/registrar/access-requests")
    expect(desk.get_by_role("heading", name="Запросы доступа к картам")).to_be_visible()
    expect(desk.locator("article.ob-request")).to_contain_text("new-passport@example.org")
    shoot(desk, "onboarding-registrar-queue")
    desk_phone = new_page(viewport=PHONE)
    sign_in_demo(desk_phone, live_server, "registrar")
    desk_phone.goto(live_server + "/registrar/access-requests")
    shoot(desk_phone, "onboarding-registrar-queue-phone")
    desk.get_by_role("button", name="Одобрить и открыть доступ").click()
    expect(desk.get_by_role("status")).to_contain_text("Запрос одобрен")

    page.reload()
    expect(page.get_by_role("heading", name="Медицинская карта открыта")).to_be_visible()
    page.get_by_role("link", name="Открыть медицинскую карту").click()
    expect(page).to_have_url(re.compile(rf"/card/{pid}$"))
    page.set_viewport_size(PHONE)
    shoot(page, "onboarding-card-after-approval-phone")


def test_request_account_cancels_access_and_the_card_closes_in_every_session(
    page: Page, live_server: str, demo: None, engine: Engine, new_page: Any
) -> None:
    pid = make_card(engine, snils=make_snils("556677001"), org="")
    patient = Repository(engine, AccessContext.system()).read("Patient", pid).json()
    _register(page, live_server, "cancel-me@example.org")
    _fill_identity(page, patient)
    page.get_by_role("button", name="Проверить данные").click()
    page.get_by_role("button", name="Подать запрос на доступ").click()
    expect(page.get_by_role("heading", name="Медицинская карта открыта")).to_be_visible()

    # the same person signed in on a phone, the card open there
    phone = new_page(viewport=PHONE)
    phone.goto(live_server + "/login")
    phone.get_by_label("Электронная почта или телефон").fill("cancel-me@example.org")
    phone.get_by_label("Пароль", exact=True).fill(PASSWORD)
    phone.get_by_role("button", name="Войти").click()
    phone.goto(live_server + "/card")
    expect(phone).to_have_url(re.compile(rf"/card/{pid}$"))

    page.goto(live_server + "/access")
    button = page.get_by_role("button", name="Отключить доступ к медицинской карте")
    button.click()  # the box not ticked: refused with the reason, nothing changes
    expect(page.get_by_role("alert")).to_contain_text("отметьте, что вы понимаете")
    page.get_by_label("Я понимаю, что доступ к карте будет закрыт до нового запроса").check()
    page.get_by_role("button", name="Отключить доступ к медицинской карте").click()
    expect(page.get_by_role("status")).to_contain_text("Доступ к медицинской карте отключён")
    shoot(page, "onboarding-access-cancelled")

    phone.goto(live_server + "/card")
    expect(phone).to_have_url(re.compile(r"/access$"))
    expect(phone.get_by_role("button", name="Проверить данные")).to_be_visible()
