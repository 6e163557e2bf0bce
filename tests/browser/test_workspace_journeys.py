"""Registrar and clinician journeys in real Chromium: attach, card, signed entries,
and the patient seeing them in the portal with their source."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.auth import accounts
from medcard.fhir.store.repository import Repository
from medcard.identifiers import SNILS_SYSTEM
from tests.browser.conftest import PHONE, shoot, sign_in_demo


def test_registrar_attaches_a_new_person(page: Page, live_server: str, demo: None) -> None:
    sign_in_demo(page, live_server, "registrar")
    page.goto(live_server + "/workspace/attach")
    shoot(page, "workspace-attach")
    page.get_by_label("Фамилия").fill("Кузнецова")
    page.get_by_label("Имя", exact=True).fill("Мария")
    page.get_by_label("Дата рождения").fill("1985-07-15")
    page.get_by_label("СНИЛС").fill("112-233-445 00")  # wrong control number
    page.get_by_label("Пол", exact=True).select_option("female")
    page.get_by_role("button", name="Прикрепить").click()
    expect(page.get_by_role("alert")).to_contain_text("СНИЛС неверен")
    page.get_by_label("СНИЛС").fill("112-233-445 95")
    page.get_by_role("button", name="Прикрепить").click()
    expect(page.get_by_role("status")).to_contain_text("Карта создана")
    expect(page.get_by_role("heading", name="Кузнецова Мария")).to_be_visible()
    expect(page.locator("table")).to_contain_text("действует")
    shoot(page, "workspace-attachment")
    page.set_viewport_size(PHONE)
    shoot(page, "workspace-attachment-phone")


def test_doctor_writes_signed_entries_the_patient_sees(
    page: Page, new_page: Callable[..., Page], live_server: str, demo: None, engine: Engine
) -> None:
    patient = accounts.get_by_login(engine, "patient@medcard.example")
    assert patient is not None
    pid = patient.fhir_ref.split("/", 1)[1]
    repo = Repository(engine, AccessContext.system())
    try:
        card = repo.read("Patient", pid).json()
        doctor_family = repo.read("Practitioner", "prac-77-gp12-therapist-1").json()["name"][0][
            "family"
        ]
    finally:
        repo.close()
    snils = next(i["value"] for i in card["identifier"] if i["system"] == SNILS_SYSTEM)

    # the registrar finds the card by SNILS and attaches it to the doctor's polyclinic
    desk = new_page()
    sign_in_demo(desk, live_server, "registrar")
    desk.goto(live_server + "/workspace")
    desk.get_by_label("СНИЛС, полис ОМС (ЕНП), паспорт или фамилия и имя").fill(snils)
    desk.get_by_role("button", name="Найти").click()
    desk.get_by_role("link", name="Прикрепление и история").first.click()
    desk.get_by_label("Поликлиника").select_option("org-77-gp12")
    desk.get_by_role("button", name="Прикрепить / перевести").click()
    expect(desk.get_by_role("status")).to_contain_text("Пациент")

    sign_in_demo(page, live_server, "doctor")
    page.goto(live_server + "/workspace")
    shoot(page, "workspace-search")
    page.goto(f"{live_server}/workspace/patients/{pid}")
    expect(page.get_by_role("heading", name="Клиническая сводка")).to_be_visible()
    shoot(page, "workspace-card")

    # a diagnosis: first an unknown code, refused with what to fix
    page.get_by_role("link", name="Диагноз", exact=True).click()
    page.get_by_label("Диагноз (МКБ-10)").fill("J06")
    page.get_by_label("Клинический статус").select_option("active")
    page.get_by_role("button", name="Подписать и сохранить").click()
    expect(page.get_by_role("alert")).to_contain_text("J06.9")
    shoot(page, "workspace-form-error")
    page.get_by_label("Диагноз (МКБ-10)").fill("J06.9")
    page.get_by_role("button", name="Подписать и сохранить").click()
    expect(page.get_by_role("status")).to_contain_text("сохранена и подписана")
    expect(page.locator(".ws-sig-valid")).to_be_visible()
    shoot(page, "workspace-entry-signed")

    # a prescription
    page.goto(f"{live_server}/workspace/patients/{pid}/new/prescription")
    page.get_by_label("Препарат").fill("C09AA02")
    page.get_by_label("Способ применения и доза").fill("По 1 таблетке 2 раза в день")
    page.get_by_label("Приёмов в сутки").fill("2")
    page.get_by_label("Количество к отпуску").fill("60")
    page.get_by_label("Причина", exact=False).first.fill("I10")
    page.get_by_role("button", name="Подписать и сохранить").click()
    expect(page.locator(".ws-sig-valid")).to_be_visible()

    # the patient sees the doctor's entries in the portal, with their source
    me = new_page()
    sign_in_demo(me, live_server, "patient")
    me.goto(f"{live_server}/card/{pid}/diagnoses")
    expect(
        me.get_by_text("Острая инфекция верхних дыхательных путей неуточненная").first
    ).to_be_visible()
    expect(me.get_by_text(doctor_family).first).to_be_visible()  # the source: who wrote it
    shoot(me, "workspace-entry-in-portal")
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/workspace/patients/{pid}")
    shoot(page, "workspace-card-phone")
