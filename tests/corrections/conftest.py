"""Fixtures for the corrections tests: the demo population with its authorities and
reviewers, and repositories bound to a demo person exactly as their pages bind them."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.access.subjects import token_claims
from medcard.auth import accounts
from medcard.auth.sessions import COOKIE_NAME, create_session
from medcard.demo.loader import load_demo
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository


@pytest.fixture
def demo(engine: Engine) -> None:
    load_demo(engine, 4, console=Console(file=io.StringIO()))


def account_of(engine: Engine, login: str) -> accounts.Account:
    login = login if "@" in login else f"{login}@medcard.example"
    found = accounts.get_by_login(engine, login)
    assert found is not None, login
    return found


def context_of(engine: Engine, login: str) -> AccessContext:
    """The access context the pages build for this demo account (web/deps.page_context)."""
    account = account_of(engine, login)
    claims = token_claims(engine, account.role, account.fhir_ref, account.organization_ref)
    patients = set(claims.get("patients") or [])
    if account.role == Role.PATIENT:
        patients.add(account.fhir_ref.split("/", 1)[1])
    return AccessContext(
        actor=account.fhir_ref or account.actor,
        scopes=Scopes.parse("patient/*.cruds" if account.role == Role.PATIENT else "user/*.cruds"),
        client_id="web",
        patient_ids=frozenset(patients),
        role=account.role,
        organizations=frozenset(claims.get("orgs") or []),
        account_id=account.id,
    )


@pytest.fixture
def repo_of(engine: Engine) -> Iterator[Callable[[str], Repository]]:
    made: list[Repository] = []

    def make(login: str) -> Repository:
        repo = Repository(engine, context_of(engine, login))
        made.append(repo)
        return repo

    yield make
    for r in made:
        r.close()


def patient_id(engine: Engine, who: str = "patient") -> str:
    return account_of(engine, who).fhir_ref.split("/", 1)[1]


def system(engine: Engine) -> Repository:
    return Repository(engine, AccessContext.system())


def first(engine: Engine, rtype: str, pid: str, *extra: tuple[str, str]) -> str:
    """The ref of one of ``pid``'s entries of ``rtype``."""
    repo = system(engine)
    found = repo.search(parse(rtype, [("patient", f"Patient/{pid}"), *extra, ("_count", "1")]))
    assert found.matches, (rtype, pid)
    return f"{rtype}/{found.matches[0].id}"


@pytest.fixture
def signed_in(app: Any, engine: Engine) -> Iterator[Callable[[str], TestClient]]:
    made: list[TestClient] = []

    def make(who: str) -> TestClient:
        account = account_of(engine, who)
        cookie, _ = create_session(engine, account.id, mfa_ok=True)
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        c.cookies.set(COOKIE_NAME, cookie)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def clinic_reviewer(engine: Engine, demo: None) -> str:
    """A reviewer login of the demo patient's own polyclinic (reviewer@ when it is gp12;
    a small demo population may attach the patient elsewhere)."""
    clinic = system(engine).read("Patient", patient_id(engine)).json()["managingOrganization"]
    ref = clinic["reference"]
    if account_of(engine, "reviewer").organization_ref == ref:
        return "reviewer"
    login = "reviewer-clinic@medcard.example"
    accounts.create_account(
        engine,
        login,
        "medcard-demo",
        Role.REVIEWER,
        display_name="Орлова Н. С.",
        organization_ref=ref,
    )
    return login
