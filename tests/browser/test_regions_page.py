"""«Что доступно в вашем регионе» in Chromium on the demo app (stand-in national sign-in
on, as ``serve --demo``): from the start page to the comparison of the demo's regions."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import shoot
from tests.sso.conftest import standin_app

__all__ = ["standin_app"]  # the fixture used here


def test_newcomer_compares_the_demo_regions(page: Page, standin_app: str, demo: None) -> None:
    page.goto(standin_app + "/")
    page.get_by_role("link", name="Что доступно в вашем регионе").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Что доступно в вашем регионе")
    table = page.get_by_role("table")
    for name in ("г. Москва", "г. Санкт-Петербург", "Свердловская область"):
        expect(table.get_by_role("columnheader", name=name)).to_be_visible()
    # Columns in code order: 66, 77, 78.
    expect(table.locator('tr[data-feature="family-history"] td')).to_have_text(
        ["есть", "есть", "нет"]
    )
    expect(table.locator('tr[data-feature="diary"] td')).to_have_text(["нет", "есть", "есть"])
    expect(table.get_by_role("row", name="Как войти")).to_contain_text("через Госуслуги")
    shoot(page, "regions-compare")
