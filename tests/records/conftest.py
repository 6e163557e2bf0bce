"""Fixtures for the card tests: the demo population, and page clients signed in as its
patients (a session made directly: the sign-in forms have their own tests)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.sessions import COOKIE_NAME, create_session
from medcard.demo.loader import load_demo


@pytest.fixture
def demo(engine: Engine) -> None:
    load_demo(engine, 4, console=Console(file=io.StringIO()))


def account_of(engine: Engine, login: str) -> accounts.Account:
    found = accounts.get_by_login(engine, login)
    assert found is not None, login
    return found


def patient_id(engine: Engine, who: str) -> str:
    return account_of(engine, f"{who}@medcard.example").fhir_ref.split("/", 1)[1]


@pytest.fixture
def signed_in(app: Any, engine: Engine) -> Iterator[Callable[[str], TestClient]]:
    """signed_in("patient") -> a cookie client of that demo (or any) login."""
    made: list[TestClient] = []

    def make(who: str) -> TestClient:
        login = who if "@" in who else f"{who}@medcard.example"
        account = account_of(engine, login)
        cookie, _ = create_session(engine, account.id, mfa_ok=True)
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        c.cookies.set(COOKIE_NAME, cookie)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
