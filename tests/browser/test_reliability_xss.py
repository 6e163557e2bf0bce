"""Stored and reflected XSS, checked where it matters: in headless Chromium, no script
from what a patient, clinician or administrator wrote (or a URL carried) runs.

The pages are ``XSS_PAGES`` in tests/reliability/web_targets.py (extend it with new
pages); the payload sets ``window.__xss`` from an inline script and from an ``onerror``
handler, so escaping and the Content-Security-Policy are both exercised.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.accounts import Role
from tests.browser.conftest import sign_in
from tests.reliability.web_targets import XSS, XSS_PAGES, seed_xss

PASSWORD = "xss-test-password-1"
pytestmark = pytest.mark.reliability


def _account(engine: Engine, role: str, **kw: Any) -> tuple[str, str]:
    login = f"xss-{role}@example.org"
    acct = accounts.create_account(engine, login, PASSWORD, Role(role), display_name=XSS, **kw)
    secret = ""
    if role != "patient":
        accounts.enable_totp(engine, acct.id)
        found = accounts.get(engine, acct.id)
        assert found is not None
        assert found.totp_secret
        secret = found.totp_secret
    return login, secret


def test_no_script_runs_from_written_text_on_any_listed_page(
    browser: Browser, live_server: str, engine: Engine
) -> None:
    ids = seed_xss(engine, live_server)
    logins = {
        "patient": _account(engine, "patient", fhir_ref=f"Patient/{ids['patient']}"),
        "practitioner": _account(
            engine, "practitioner", fhir_ref=f"Practitioner/{ids['practitioner']}"
        ),
        "org_admin": _account(engine, "org_admin", organization_ref="Organization/org-x"),
    }
    ran: list[str] = []
    for role in ("anonymous", "patient", "practitioner", "org_admin"):
        context = browser.new_context(locale="ru-RU")
        context.set_default_timeout(15_000)
        # The app's redirect URI is not a real site: answer it here.
        context.route("https://app.example/**", lambda r: r.fulfill(body="app"))
        page = context.new_page()
        page.on("dialog", lambda d: (ran.append(f"dialog: {d.message}"), d.dismiss()))
        if role != "anonymous":
            login, secret = logins[role]
            sign_in(page, live_server, login, PASSWORD, secret)
            assert "/login" not in page.url, (role, page.url)
        for name, who, template in XSS_PAGES:
            if who != role:
                continue
            page.goto(live_server + template.format(**ids))
            page.wait_for_load_state("load")
            if page.evaluate("() => window.__xss") is not None:
                ran.append(f"{name} ({page.url})")
        context.close()
    assert ran == []
