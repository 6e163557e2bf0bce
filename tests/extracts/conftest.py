"""Fixtures for the extracts tests: the demo population, jobs run inline, and page
clients signed in as its patients (sessions made directly: sign-in has its own tests)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Engine

from medcard import jobs
from medcard.auth import accounts
from medcard.auth.sessions import COOKIE_NAME, create_session
from medcard.config import Settings
from medcard.demo.loader import load_demo


@pytest.fixture
def demo(engine: Engine) -> None:
    load_demo(engine, 4, console=Console(file=io.StringIO()))


def patient_of(engine: Engine, who: str) -> str:
    """The card id of a demo login ("patient", "parent")."""
    account = accounts.get_by_login(engine, f"{who}@medcard.example")
    assert account is not None, who
    return account.fhir_ref.split("/", 1)[1]


@pytest.fixture
def inline_jobs(settings: Settings, engine: Engine) -> Iterator[Settings]:
    """Jobs run when queued (same data directory, so the same server key), then the
    session's queue configuration is put back."""
    saved = (jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime)
    inline = settings.model_copy(update={"jobs_mode": "immediate"})
    jobs.configure(inline, engine)
    yield inline
    jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime = saved


@pytest.fixture
def signed_in(app: Any, engine: Engine) -> Iterator[Callable[[str], TestClient]]:
    """signed_in("patient") -> a cookie client of that demo login."""
    made: list[TestClient] = []

    def make(who: str) -> TestClient:
        account = accounts.get_by_login(engine, f"{who}@medcard.example")
        assert account is not None, who
        cookie, _ = create_session(engine, account.id, mfa_ok=True)
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        c.cookies.set(COOKIE_NAME, cookie)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
