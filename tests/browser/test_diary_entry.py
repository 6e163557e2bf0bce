"""The well-being diary in headless Chromium: a phone-sized entry, the chart drawn."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.auth import accounts
from tests.browser.conftest import PHONE, shoot, sign_in_demo


def _patient_id(engine: Engine, login: str) -> str:
    account = accounts.get_by_login(engine, login)
    assert account is not None
    return account.fhir_ref.split("/", 1)[1]


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
