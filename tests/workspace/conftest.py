"""Fixtures for the workspace: the demo population, signed-in page clients per role."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.smart import Scopes
from medcard.access.subjects import token_claims
from medcard.auth import accounts
from medcard.config import Settings
from medcard.demo.accounts import DEMO_PASSWORD
from medcard.demo.loader import load_demo
from medcard.fhir.store.repository import Repository
from medcard.signing import KeyStore

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def demo(engine: Engine) -> None:
    load_demo(engine, 3, console=Console(file=io.StringIO()))


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field"
    return m.group(1)


@pytest.fixture
def signed_in(app: Any, engine: Engine) -> Iterator[Callable[[str], TestClient]]:
    """signed_in("doctor") -> a cookie client past password and TOTP."""
    made: list[TestClient] = []

    def make(who: str) -> TestClient:
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        made.append(c)
        login = f"{who}@medcard.example"
        page = c.get("/login")
        r = c.post(
            "/login",
            data={"login": login, "password": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)},
        )
        assert r.status_code == 303, r.text
        if r.headers["location"].startswith("/login/mfa"):
            account = accounts.get_by_login(engine, login)
            assert account is not None
            assert account.totp_secret
            mfa_page = c.get("/login/mfa")
            code = pyotp.TOTP(account.totp_secret).now()
            r = c.post("/login/mfa", data={"code": code, "csrf_token": csrf_of(mfa_page.text)})
            assert r.status_code == 303, r.text
        return c

    yield make
    for c in made:
        c.close()


def context_of(engine: Engine, login: str) -> AccessContext:
    account = accounts.get_by_login(engine, login)
    assert account is not None
    claims = token_claims(engine, account.role, account.fhir_ref, account.organization_ref)
    return AccessContext(
        actor=account.fhir_ref or account.actor,
        scopes=Scopes.parse("user/*.cruds"),
        role=account.role,
        organizations=frozenset(claims.get("orgs") or []),
        account_id=account.id,
    )


@pytest.fixture
def repo_of(engine: Engine) -> Iterator[Callable[[str], Repository]]:
    made: list[Repository] = []

    def make(who: str) -> Repository:
        repo = Repository(engine, context_of(engine, f"{who}@medcard.example"))
        made.append(repo)
        return repo

    yield make
    for r in made:
        r.close()


@pytest.fixture
def keys(engine: Engine, settings: Settings) -> KeyStore:
    return KeyStore(engine, settings.data_dir)


@pytest.fixture
def patient_id(demo: None, engine: Engine) -> str:
    """The demo patient's card, attached to the demo doctor's polyclinic (gp12)."""
    from medcard import attachment
    from medcard.entries import FormError

    account = accounts.get_by_login(engine, "patient@medcard.example")
    assert account is not None
    pid = account.fhir_ref.split("/", 1)[1]
    repo = Repository(engine, context_of(engine, "registrar@medcard.example"))
    try:
        attachment.attach(repo, "org-77-gp12", patient_id=pid)
    except FormError as exc:
        if exc.fields() != {"organization"}:  # anything but "already attached there"
            raise
    finally:
        repo.close()
    return pid


@pytest.fixture
def api(app: Any, token: Callable[..., str]) -> Iterator[Callable[..., TestClient]]:
    """api(scope, **claims): a FHIR client with its own bearer token (no lifespan run)."""
    made: list[TestClient] = []

    def make(scope: str = "system/*.*", **claims: Any) -> TestClient:
        c = TestClient(app, base_url="http://testserver")
        c.headers["Authorization"] = f"Bearer {token(scope, **claims)}"
        c.headers["Accept"] = "application/fhir+json"
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
