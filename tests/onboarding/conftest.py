"""Fixtures for getting access to the card: a card with known identity details, accounts,
and jobs run inline unless a test starts a real consumer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from medcard import jobs
from medcard.access.context import AccessContext
from medcard.auth import accounts
from medcard.auth.accounts import Account, Role
from medcard.config import Settings
from medcard.demo.catalogs import DOCUMENT_CATEGORY_SYSTEM, V2_0074
from medcard.fhir import local
from medcard.identifiers import PASSPORT_SYSTEM, SNILS_SYSTEM, make_snils

PASSWORD = "correct horse battery"
SNILS = make_snils("112233445")
PASSPORT = "4509123456"
ORG = "org-onb-1"

# What the person types: as printed on their documents (separators, ё, case).
TYPED: dict[str, str] = {
    "snils": "112-233-445 " + SNILS[-2:],
    "family": "СЕМЁНОВА",
    "given": "Алёна",
    "middle": "петровна",
    "birth_date": "12.03.1984",
    "passport": "45 09 123456",
}


@pytest.fixture
def inline_jobs(engine: Engine, settings: Settings) -> Iterator[None]:
    """Jobs run when enqueued (immediate mode); the session's queue is put back after."""
    saved = (jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime)
    jobs.configure(Settings(data_dir=settings.data_dir, jobs_mode="immediate"), engine)
    yield
    jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime = saved


def _post(engine: Engine, resource: dict[str, Any]) -> str:
    resp = local.call(
        engine, AccessContext.system("system:test"), "POST", resource["resourceType"], resource
    )
    assert resp.status == 201, resp.body_bytes()
    body = json.loads(resp.body_bytes())
    return str(body["id"])


def make_card(
    engine: Engine, *, snils: str = SNILS, passport: str | None = PASSPORT, org: str = ORG
) -> str:
    """A Patient «Семенова Алена Петровна», 1984-03-12, with a few documents."""
    identifiers = [{"system": SNILS_SYSTEM, "value": snils}]
    if passport:
        identifiers.append({"system": PASSPORT_SYSTEM, "value": passport})
    if org:
        local.call(
            engine,
            AccessContext.system("system:test"),
            "PUT",
            f"Organization/{org}",
            {"resourceType": "Organization", "id": org, "name": "Поликлиника № 1"},
        )
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"use": "official", "family": "Семенова", "given": ["Алена", "Петровна"]}],
        "gender": "female",
        "birthDate": "1984-03-12",
    }
    if org:
        patient["managingOrganization"] = {"reference": f"Organization/{org}"}
    pid = _post(engine, patient)
    subject = {"reference": f"Patient/{pid}"}
    _post(
        engine,
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "category": [{"coding": [{"system": V2_0074, "code": "LAB"}]}],
            "code": {"text": "Общий анализ крови"},
            "subject": subject,
            "effectiveDateTime": "2024-05-14",
        },
    )
    _post(
        engine,
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "category": [{"coding": [{"system": V2_0074, "code": "RAD"}]}],
            "code": {"text": "Рентгенография грудной клетки"},
            "subject": subject,
            "effectiveDateTime": "2024-06-01",
        },
    )
    _post(
        engine,
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"text": "Справка 086/у"},
            "category": [{"coding": [{"system": DOCUMENT_CATEGORY_SYSTEM, "code": "certificate"}]}],
            "subject": subject,
            "date": "2024-07-01T10:00:00+03:00",
            "description": "Медицинская справка 086/у",
            "content": [
                {"attachment": {"contentType": "text/plain", "data": "0KHQv9GA0LDQstC60LA="}}
            ],
        },
    )
    return pid


@pytest.fixture
def card(engine: Engine) -> str:
    return make_card(engine)


@pytest.fixture
def make_account(engine: Engine) -> Callable[..., Account]:
    counter = iter(range(1, 10_000))

    def make(role: Role = Role.PATIENT, **kw: Any) -> Account:
        login = kw.pop("login", None) or f"person{next(counter)}@example.org"
        account = accounts.create_account(engine, login, PASSWORD, role, **kw)
        if role is not Role.PATIENT:
            accounts.enable_totp(engine, account.id)
        found = accounts.get(engine, account.id)
        assert found is not None
        return found

    return make


def fresh(engine: Engine, account: Account) -> Account:
    found = accounts.get(engine, account.id)
    assert found is not None
    return found


@pytest.fixture
def web(app: Any, inline_jobs: None) -> Iterator[Any]:
    """A browser-like client: no bearer token, cookies kept, redirects not followed."""
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


@pytest.fixture
def new_web(app: Any) -> Iterator[Callable[[], Any]]:
    """Another browser (e.g. the registrar's desk) next to ``web``."""
    from fastapi.testclient import TestClient

    made: list[Any] = []

    def make() -> Any:
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
