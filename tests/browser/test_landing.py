"""A doctor signing in through the real forms lands in the workspace, unless they were
on their way to a page of it (issue 20, item 1)."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect

from medcard.access.roles import Role
from medcard.demo.accounts import DEMO_PASSWORD, demo_totp_secret
from tests.browser.conftest import sign_in_demo


def test_demo_doctor_lands_in_the_workspace(page: Page, live_server: str, demo: None) -> None:
    sign_in_demo(page, live_server, "doctor")
    expect(page).to_have_url(re.compile(r"/workspace$"))
    expect(page.locator('header nav a[aria-current="page"]')).to_have_attribute(
        "href", "/workspace"
    )
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_a_deep_link_survives_the_sign_in(page: Page, live_server: str, demo: None) -> None:
    page.goto(live_server + "/workspace/referrals")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Электронная почта или телефон").fill("doctor@medcard.example")
    page.get_by_label("Пароль").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    code = pyotp.TOTP(demo_totp_secret(Role.PRACTITIONER)).now()
    page.get_by_label("Код из приложения").fill(code)
    page.get_by_role("button", name="Подтвердить").click()
    expect(page).to_have_url(re.compile(r"/workspace/referrals$"))
