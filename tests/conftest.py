"""Test fixtures: a real database per test session (SQLite file, or PostgreSQL when
MEDCARD_TEST_DATABASE_URL points at one), emptied before each test; an app and
HTTP client on it; tokens for every kind of caller; a live server for the
independent FHIR clients."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher, Type
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from medcard.auth import passwords
from medcard.auth.tokens import TokenIssuer, load_or_create_key
from medcard.config import Settings
from medcard.db.engine import make_engine
from medcard.db.migrate import upgrade
from medcard.db.tables import metadata
from medcard.web.app import create_app

PG_URL = os.environ.get("MEDCARD_TEST_DATABASE_URL", "")
# No background ANALYZE rounds (medcard.db.statistics) outside their own tests: a round
# can outlive the test whose database it analyses; tests/api/test_fresh_statistics.py
# turns them on.
os.environ.setdefault("MEDCARD_FRESH_STATISTICS", "0")


def _pg_admin(url: str) -> tuple[str, str]:
    base, _, _db = url.rpartition("/")
    return base + "/postgres", base


@pytest.fixture(autouse=True)
def _fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters everywhere: the suite hashes hundreds of passwords (demo
    accounts in every page test).  The production parameters have their own test
    (tests/auth/test_accounts.py), which uses the real ones explicitly."""
    monkeypatch.setattr(
        passwords,
        "HASHER",
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID),
    )


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("medcard-data")


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Iterator[Settings]:
    if PG_URL:
        admin_url, base = _pg_admin(PG_URL)
        name = f"medcard_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(
            admin_url.replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield Settings(
            data_dir=data_dir,
            database_url=f"{base}/{name}",
            billing_sweep=False,
            rate_limits=False,
        )
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        # No periodic billing sweep: it would write into other tests' stores at random.
        # Nor rate limits: the suite signs in far faster than a person (tested on their own).
        yield Settings(data_dir=data_dir, billing_sweep=False, rate_limits=False)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    eng = make_engine(settings)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _empty_store(request: pytest.FixtureRequest) -> None:
    """Every test that touches the store starts from an empty one."""
    if "engine" not in request.fixturenames:
        return
    eng: Engine = request.getfixturevalue("engine")
    with eng.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def issuer(settings: Settings) -> TokenIssuer:
    return TokenIssuer(load_or_create_key(settings.signing_key_path), settings.token_issuer)


@pytest.fixture(scope="session")
def app(settings: Settings, engine: Engine) -> Any:
    return create_app(settings, engine)


@pytest.fixture
def token(issuer: TokenIssuer) -> Callable[..., str]:
    """token("system/*.*") or token("patient/*.rs", patient="123")."""

    def mint(
        scope: str = "system/*.*",
        *,
        patient: str | None = None,
        subject: str | None = None,
        **kw: Any,
    ) -> str:
        sub = subject or (f"Patient/{patient}" if patient else "system:test")
        return issuer.mint(sub, scope, patient=patient, **kw)

    return mint


@pytest.fixture
def client(app: Any, token: Callable[..., str]) -> Iterator[TestClient]:
    """An HTTP client with a system token; pass headers= to act as someone else."""
    with TestClient(app, base_url="http://testserver") as c:
        c.headers["Authorization"] = f"Bearer {token()}"
        c.headers["Accept"] = "application/fhir+json"
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(app: Any) -> Iterator[str]:
    """A real uvicorn server on loopback, for clients that speak HTTP themselves."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=5)
