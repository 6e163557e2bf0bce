"""Real headless Chromium (Debian's ``chromium``) driven by Playwright for Python.

Playwright's own browser downloads do not work here, so the tests launch the system
binary.  Screenshots land in ``build/screenshots/`` for reviewers (``shoot``).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from rich.console import Console
from sqlalchemy import Engine

from medcard.access.roles import Role
from medcard.demo.accounts import DEMO_PASSWORD, demo_totp_secret
from medcard.demo.loader import load_demo

CHROMIUM = os.environ.get("MEDCARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
STAFF_DEMO_ROLES = {
    "doctor": Role.PRACTITIONER,
    "registrar": Role.REGISTRAR,
    "admin": Role.ORG_ADMIN,
    "reviewer": Role.REVIEWER,
    "region77": Role.REGION_ADMIN,
}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module.  Playwright's sync API keeps an asyncio loop running
    on this thread while it is open, so it must close before tests of other modules that
    call asyncio.run() (tests/sso) run in the same worker."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh test installs Debian's chromium")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile (no cookies) with a desktop-sized window, in Russian."""
    context = browser.new_context(viewport=DESKTOP, locale="ru-RU")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Another, separate browser profile: new_page(viewport=PHONE) for a phone."""
    contexts = []

    def make(viewport: dict[str, int] | None = None, locale: str = "ru-RU") -> Page:
        ctx = browser.new_context(viewport=viewport or DESKTOP, locale=locale)
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def shoot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as build/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(
    page: Page, base: str, login: str, password: str = DEMO_PASSWORD, totp_secret: str = ""
) -> None:
    """Sign in through the real login form (and the code form for staff)."""
    page.goto(base + "/login")
    page.get_by_label("Электронная почта или телефон").fill(login)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()
    if totp_secret:
        page.get_by_label("Код из приложения").fill(pyotp.TOTP(totp_secret).now())
        page.get_by_role("button", name="Подтвердить").click()
    page.wait_for_load_state()


def sign_in_demo(page: Page, base: str, who: str) -> None:
    """who: patient, parent, doctor, registrar, admin, reviewer, region77."""
    role = STAFF_DEMO_ROLES.get(who)
    secret = demo_totp_secret(role) if role is not None else ""
    sign_in(page, base, f"{who}@medcard.example", DEMO_PASSWORD, secret)


@pytest.fixture
def demo(engine: Engine) -> None:
    """The demo data set (a few patients) and the demo accounts, as ``medcard demo`` makes."""
    load_demo(engine, 4, console=Console(file=io.StringIO()))
