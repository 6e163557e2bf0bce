"""Region switching in Chromium: the same diary page for patients of two regions."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.regions.features import ALL_FEATURES, Feature
from medcard.regions.lookup import region_of_patient
from tests.browser.conftest import shoot, sign_in_demo
from tests.browser.test_diary_entry import _patient_id
from tests.regions.world import set_features


def test_diary_disappears_when_the_region_turns_it_off(
    page: Page, live_server: str, demo: None, engine: Engine
) -> None:
    pid = _patient_id(engine, "patient@medcard.example")
    region = region_of_patient(engine, pid)
    assert region in ("77", "78")
    sign_in_demo(page, live_server, "patient")
    page.goto(f"{live_server}/card/{pid}/family")
    expect(page.get_by_role("link", name="Дневник самочувствия")).to_be_visible()
    set_features(engine, region, ALL_FEATURES - {Feature.DIARY})
    page.goto(f"{live_server}/card/{pid}/family")
    expect(page.get_by_role("link", name="Дневник самочувствия")).to_have_count(0)
    response = page.goto(f"{live_server}/card/{pid}/diary")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_text("отключён в вашем регионе")).to_be_visible()
    shoot(page, "diary-region-off")


def test_region_admin_page(page: Page, live_server: str, demo: None) -> None:
    sign_in_demo(page, live_server, "region77")
    page.goto(f"{live_server}/admin/regions/77")
    expect(page.get_by_role("heading", name="Регион 77 — г. Москва")).to_be_visible()
    page.get_by_label("Дневник самочувствия").uncheck()
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_text("Настройки региона сохранены.")).to_be_visible()
    expect(page.locator("table.data tbody tr")).to_have_count(2)
    shoot(page, "region-admin")
