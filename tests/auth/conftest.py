"""Fixtures for the sign-in tests: page clients without the API token, accounts, a clock."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard import clock
from medcard.auth import accounts, mfa
from medcard.auth.accounts import Account, Role
from medcard.db.tables import audit_log

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def web(app: Any) -> Iterator[TestClient]:
    """A browser-like client: no bearer token, cookies kept, redirects not followed."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


@pytest.fixture
def new_client(app: Any) -> Iterator[Callable[..., TestClient]]:
    """A second (or https) browser: new_client(base_url="https://testserver")."""
    made: list[TestClient] = []

    def make(base_url: str = "http://testserver", app_: Any = None) -> TestClient:
        c = TestClient(app_ or app, base_url=base_url, follow_redirects=False)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def make_account(engine: Engine) -> Callable[..., Account]:
    counter = iter(range(1, 10_000))

    def make(
        role: Role | str = Role.PATIENT,
        *,
        login: str | None = None,
        password: str = PASSWORD,
        totp: bool = False,
        **kw: Any,
    ) -> Account:
        login = login or f"user{next(counter)}@example.org"
        account = accounts.create_account(engine, login, password, role, **kw)
        if totp:
            accounts.enable_totp(engine, account.id)
        found = accounts.get(engine, account.id)
        assert found is not None
        return found

    return make


def csrf_of(html: str) -> str:
    m = CSRF_FIELD.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def login(c: TestClient, login_: str, password: str = PASSWORD, **extra: str) -> Any:
    """Open the login page (for the double-submit token) and post the form."""
    page = c.get("/login")
    assert page.status_code == 200
    data = {"login": login_, "password": password, "csrf_token": csrf_of(page.text), **extra}
    return c.post("/login", data=data)


def code_for(account: Account, offset: int = 0) -> str:
    assert account.totp_secret
    return mfa.code_at(account.totp_secret, mfa.current_step() + offset)


def submit_code(c: TestClient, path: str, code: str) -> Any:
    page = c.get(path)
    assert page.status_code == 200, page.text
    return c.post(path, data={"code": code, "csrf_token": csrf_of(page.text)})


def sign_in(
    c: TestClient, engine: Engine, account: Account, password: str = PASSWORD
) -> TestClient:
    """Full sign-in, including the second factor where the account needs it."""
    r = login(c, account.login, password)
    assert r.status_code == 303, r.text
    if r.headers["location"].startswith("/login/mfa"):
        fresh = accounts.get(engine, account.id)
        assert fresh is not None
        r = submit_code(c, "/login/mfa", code_for(fresh))
        assert r.status_code == 303, r.text
    assert c.get("/me").status_code == 200
    return c


def audit_rows(engine: Engine, interaction: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_log).order_by(audit_log.c.id)
    if interaction:
        query = query.where(audit_log.c.interaction == interaction)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


class Clock:
    """Moves medcard.clock forward: sessions, lockouts, resets and TOTP steps follow it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0
        real = clock.now_micros
        monkeypatch.setattr(clock, "now_micros", lambda: real() + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += int(seconds * 1_000_000)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)
