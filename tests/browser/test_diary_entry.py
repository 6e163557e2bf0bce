"""The well-being diary in headless Chromium: a phone-sized entry, the chart drawn."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.auth import accounts
from medcard.fhir.store.repository import Repository
from medcard.identifiers import SNILS_SYSTEM
from tests.browser.conftest import PHONE, shoot, sign_in_demo


def _patient_id(engine: Engine, login: str) -> str:
    account = accounts.get_by_login(engine, login)
    assert account is not None
    return account.fhir_ref.split("/", 1)[1]


def _snils(engine: Engine, pid: str) -> str:
    repo = Repository(engine, AccessContext.system())
    try:
        card = repo.read("Patient", pid).json()
    finally:
        repo.close()
    return str(next(i["value"] for i in card["identifier"] if i["system"] == SNILS_SYSTEM))


def test_patient_enters_readings_on_a_phone_and_sees_the_chart(
    new_page: Callable[..., Page], live_server: str, demo: None, engine: Engine
) -> None:
    pid = _patient_id(engine, "patient@medcard.example")
    page = new_page(viewport=PHONE)
    sign_in_demo(page, live_server, "patient")
    page.goto(f"{live_server}/card/{pid}/diary")
    expect(page.get_by_role("heading", name="Дневник самочувствия")).to_be_visible()
    page.get_by_label("Давление верхнее").fill("182")
    page.get_by_label("Давление нижнее").fill("95")
    page.get_by_label("Пульс, уд/мин").fill("88")
    page.get_by_label("Самочувствие, 1–10").fill("4")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_text("Запись сохранена.")).to_be_visible()
    chart = page.locator("svg.chart").first
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert box["height"] > 100
    assert page.locator("svg.chart circle[data-flag=far]").count() >= 1  # 182/95 is far above
    expect(page.get_by_text("Показания далеко от целевых значений")).to_be_visible()
    shoot(page, "diary-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/card/{pid}/diary?period=month")
    shoot(page, "diary-desktop")
    # An impossible value is refused with the reason, on the same page.
    page.get_by_label("Температура, °C").fill("60")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_text("Значение 60 невозможно")).to_be_visible()


def test_family_history_page_with_type_ahead(
    page: Page, live_server: str, demo: None, engine: Engine
) -> None:
    pid = _patient_id(engine, "patient@medcard.example")
    sign_in_demo(page, live_server, "patient")
    page.goto(f"{live_server}/card/{pid}/family")
    page.get_by_label("Кем приходится").select_option("MTH")
    field = page.locator("#code_1")
    field.fill("диаб")
    expect(page.locator("#icd10-list option[value='E11 Сахарный диабет 2 типа']")).to_have_count(1)
    field.fill("E11 Сахарный диабет 2 типа")
    page.locator("#onset_1").fill("50")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_text("Запись добавлена.")).to_be_visible()
    expect(page.get_by_text("Сахарный диабет 2 типа, с 50 лет")).to_be_visible()
    shoot(page, "family-desktop")


def test_doctor_accepts_a_diary_reading_and_the_patient_sees_it_accepted(
    new_page: Callable[..., Page], live_server: str, demo: None, engine: Engine
) -> None:
    pid = _patient_id(engine, "patient@medcard.example")
    patient = new_page()
    sign_in_demo(patient, live_server, "patient")
    patient.goto(f"{live_server}/card/{pid}/diary")
    patient.get_by_label("Пульс, уд/мин").fill("77")
    patient.get_by_role("button", name="Сохранить").click()
    expect(patient.get_by_text("Запись сохранена.")).to_be_visible()
    row = patient.locator("table.readings tr", has_text="77 уд/мин")
    expect(row.get_by_text("Внесено пациентом")).to_be_visible()
    expect(row.get_by_text("Принято врачом")).to_have_count(0)

    # the registrar attaches the card to the demo doctor's polyclinic (as in the workspace)
    desk = new_page()
    sign_in_demo(desk, live_server, "registrar")
    desk.goto(live_server + "/workspace")
    desk.get_by_label("СНИЛС, полис ОМС (ЕНП), паспорт или фамилия и имя").fill(_snils(engine, pid))
    desk.get_by_role("button", name="Найти").click()
    desk.get_by_role("link", name="Прикрепление и история").first.click()
    desk.get_by_label("Поликлиника").select_option("org-77-gp12")
    desk.get_by_role("button", name="Прикрепить / перевести").click()
    expect(desk.get_by_role("status")).to_contain_text("Пациент")

    doctor = new_page()
    sign_in_demo(doctor, live_server, "doctor")
    doctor.goto(f"{live_server}/workspace/patients/{pid}")
    doctor.get_by_role("link", name="Дневник самочувствия").click()
    doctor_row = doctor.locator("table.readings tr", has_text="77 уд/мин")
    doctor_row.get_by_role("button", name="Принять в карту").click()
    expect(doctor.get_by_text("Показание принято в карту как запись врача.")).to_be_visible()
    expect(doctor_row.get_by_text("Принято врачом")).to_be_visible()
    expect(doctor_row.get_by_role("button", name="Принять в карту")).to_have_count(0)
    shoot(doctor, "diary-accepted-doctor")

    patient.reload()
    expect(row.get_by_text("Принято врачом")).to_be_visible()
    shoot(patient, "diary-accepted-patient")
