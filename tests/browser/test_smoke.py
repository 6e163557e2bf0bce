"""The browser harness itself: Chromium renders our pages and a demo account signs in."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, shoot, sign_in_demo


def test_login_page_renders_in_chromium(page: Page, live_server: str) -> None:
    page.goto(live_server + "/login")
    expect(page.get_by_role("heading", name="Вход")).to_be_visible()
    shoot(page, "login")


def test_demo_doctor_signs_in_with_a_code(page: Page, live_server: str, demo: None) -> None:
    sign_in_demo(page, live_server, "doctor")
    assert page.url.endswith("/workspace"), page.url  # a doctor lands in the workspace
    page.goto(live_server + "/me")
    page.set_viewport_size(PHONE)
    shoot(page, "me-doctor-phone")
