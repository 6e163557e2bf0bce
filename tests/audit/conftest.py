"""Fixtures for the audit tests: entries written the way requests write them, signed-in
browsers for the pages, and a way to tamper with the log behind the database's back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, select

from medcard.access.context import AccessContext
from medcard.access.smart import Scopes
from medcard.audit import recorder
from medcard.audit.recorder import SUCCESS, AuditBuffer
from medcard.auth import accounts
from medcard.auth.sessions import COOKIE_NAME, create_session
from medcard.db.tables import audit_log

PASSWORD = "длинный пароль для теста 42"
FHIR = "application/fhir+json"


@pytest.fixture(autouse=True)
def _seal_every_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check the chain right after each request: no sealing interval."""
    monkeypatch.setattr(recorder, "SEAL_MIN_INTERVAL_SECONDS", 0.0)


@dataclass(frozen=True)
class Entry:
    actor: str
    patient_id: str = ""
    interaction: str = "read"
    resource_type: str = "Patient"
    resource_id: str = ""
    outcome: str = SUCCESS
    purpose: str = ""
    emergency: bool = False
    organization: str = ""
    recorded: int | None = None


Record = Callable[..., None]


@pytest.fixture
def record(engine: Engine) -> Record:
    """record(Entry(...), ...): one request's entries, flushed as the store flushes reads."""

    def write(*entries: Entry) -> None:
        buffer = AuditBuffer(AccessContext(entries[0].actor, Scopes(())))
        for e in entries:
            buffer.add(
                e.interaction,
                e.resource_type,
                e.resource_id or e.patient_id,
                e.patient_id,
                e.outcome,
                purpose=e.purpose,
                emergency=e.emergency,
                organization=e.organization,
            )
            if e.recorded is not None:
                buffer.entries[-1]["recorded"] = e.recorded
            buffer.entries[-1]["actor"] = e.actor
        buffer.flush_separately(engine)

    return write


def audit_rows(engine: Engine, **where: Any) -> list[Any]:
    stmt = select(audit_log).order_by(audit_log.c.id)
    for name, value in where.items():
        stmt = stmt.where(audit_log.c[name] == value)
    with engine.connect() as conn:
        return list(conn.execute(stmt).all())


Tamper = Callable[[str], None]


@pytest.fixture
def tamper(engine: Engine) -> Tamper:
    """Run SQL as someone who bypasses the append-only triggers (a database owner can:
    PostgreSQL session_replication_role, or dropping the SQLite trigger for a moment).
    What this changes only the hash chain can reveal."""

    def run(sql: str) -> None:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                conn.exec_driver_sql(sql)
                return
            triggers = _sqlite_triggers(conn)
            for name, _ in triggers:
                conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
            conn.exec_driver_sql(sql)
            for _, ddl in triggers:
                conn.exec_driver_sql(ddl)

    return run


def _sqlite_triggers(conn: Connection) -> list[tuple[str, str]]:
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
    ).all()
    return [(str(r[0]), str(r[1])) for r in rows]


# -- people and browsers ---------------------------------------------------------------


@pytest.fixture
def make_account(engine: Engine) -> Callable[..., accounts.Account]:
    counter = iter(range(1, 10_000))

    def make(role: str, **kw: Any) -> accounts.Account:
        login = kw.pop("login", None) or f"user{next(counter)}@example.ru"
        return accounts.create_account(engine, login, PASSWORD, role, **kw)

    return make


@pytest.fixture
def browser(app: Any, engine: Engine) -> Iterator[Callable[[accounts.Account], TestClient]]:
    """browser(account): a signed-in page client (second factor passed), no bearer token."""
    made: list[TestClient] = []

    def open_for(account: accounts.Account) -> TestClient:
        cookie, _ = create_session(engine, account.id, mfa_ok=True)
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        c.cookies.set(COOKIE_NAME, cookie)
        made.append(c)
        return c

    yield open_for
    for c in made:
        c.close()


def create(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    """PUT a resource with the system client (client-chosen ids keep the tests readable)."""
    r = client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}",
        json=resource,
        headers={"Content-Type": FHIR},
    )
    assert r.status_code in (200, 201), r.text
    stored: dict[str, Any] = r.json()
    return stored
