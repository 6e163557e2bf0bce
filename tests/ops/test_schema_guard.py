"""Issue 14 item 1: no serving on a schema this code does not match.

``medcard serve`` and ``medcard worker`` refuse to start on an unmigrated or older
PostgreSQL store with one line and exit 1; ``/readyz`` is never ready on a mismatch;
``--migrate`` upgrades under an advisory lock, so two processes started together
both come up after exactly one upgrade.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from medcard.cli.main import app as cli
from medcard.config import Settings
from medcard.db.engine import make_engine
from medcard.db.migrate import current, head, upgrade
from medcard.web.app import create_app
from tests.conftest import PG_URL

SECRET = "s3cret-word"
pg_only = pytest.mark.skipif(not PG_URL, reason="the embedded SQLite store is migrated on start")


def _with_password(url: str) -> str:
    # The suite's PostgreSQL trusts loopback, so any password connects.
    return url.replace("://postgres@", f"://postgres:{SECRET}@", 1)


def _env(url: str, data_dir: Path) -> dict[str, str]:
    return {
        "MEDCARD_DATABASE_URL": url,
        "MEDCARD_DATA_DIR": str(data_dir),
        "MEDCARD_BILLING_SWEEP": "0",
        "MEDCARD_JOBS_MODE": "external",
        "COLUMNS": "400",
    }


def _older_revision() -> str:
    from medcard.db.migrate import _scripts

    rev = _scripts().get_revision(head())
    assert rev is not None
    assert isinstance(rev.down_revision, str)
    return rev.down_revision


@pg_only
@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("older", [False, True], ids=["unmigrated", "older"])
def test_serve_and_worker_refuse_a_schema_not_at_head(
    fresh_db_url: str, tmp_path: Path, command: str, older: bool
) -> None:
    url = _with_password(fresh_db_url)
    have = "none"
    if older:
        have = _older_revision()
        engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
        upgrade(engine, have)
        engine.dispose()
    result = CliRunner().invoke(cli, [command], env=_env(url, tmp_path))
    assert result.exit_code == 1, result.output
    shown = url.replace("postgresql://", "postgresql+psycopg://").replace(f":{SECRET}", "")
    line = (
        f"database at {shown} is at revision {have}, "
        f"this medcard needs {head()}: run `medcard db upgrade`"
    )
    assert result.output.strip() == line
    assert SECRET not in result.output
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    assert current(engine) == (None if have == "none" else have)  # nothing was migrated
    engine.dispose()


def test_readyz_is_never_ready_on_a_schema_mismatch(fresh_db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=fresh_db_url, data_dir=tmp_path, billing_sweep=False)
    engine = make_engine(settings)
    try:
        upgrade(engine, _older_revision())
        app = create_app(settings, engine)
        http = TestClient(app)  # no lifespan: the app object is serving anyway
        resp = http.get("/readyz")
        assert resp.status_code == 503
        assert resp.json() == {
            "status": "unavailable",
            "database": "up",
            "schema": _older_revision(),
            "needs": head(),
        }
        # Started by uvicorn or gunicorn directly, the app refuses at startup too.
        with pytest.raises(RuntimeError, match="this medcard needs"), TestClient(app):
            pass
        upgrade(engine)
        assert http.get("/readyz").status_code == 200
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_servers_started_with_migrate_at_once_both_serve_after_one_upgrade(
    fresh_db_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCARD_")}
    env.update(_env(fresh_db_url, tmp_path), PYTHONWARNINGS="ignore")
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "medcard.cli.main", "serve", "--migrate", "--port", str(p)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for p in ports
    ]
    try:
        deadline = time.monotonic() + 90
        for port, proc in zip(ports, procs, strict=True):
            while True:
                assert proc.poll() is None, proc.communicate()[0].decode()
                assert time.monotonic() < deadline, "server not ready"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        outputs = [proc.communicate(timeout=30)[0].decode() for proc in procs]
    said = sorted(
        line.strip() for out in outputs for line in out.splitlines() if line.startswith("Schema ")
    )
    assert said == [f"Schema already at {head()}", f"Schema upgraded from none to {head()}"]
    engine = make_engine(Settings(database_url=fresh_db_url, data_dir=tmp_path))
    assert current(engine) == head()
    engine.dispose()


def test_a_store_migrated_by_a_newer_medcard_is_refused_not_downgraded(
    fresh_db_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import text

    engine = make_engine(Settings(database_url=fresh_db_url, data_dir=tmp_path))
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    result = CliRunner().invoke(cli, ["serve"], env=_env(fresh_db_url, tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.strip().endswith(
        f"is at revision 9999, newer than this medcard knows (it needs {head()}): upgrade medcard"
    )


@pytest.mark.skipif(not PG_URL, reason="a PostgreSQL URL is what can be unreachable")
def test_an_unreachable_database_is_one_line_too(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/nowhere"
    result = CliRunner().invoke(cli, ["worker"], env=_env(url, tmp_path))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"database at postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere is unreachable: "
    )
    assert SECRET not in result.output


def test_the_app_starts_while_the_database_is_unreachable_and_is_not_ready(
    tmp_path: Path,
) -> None:
    """A restart during a database outage: serve 503s and wait, rather than exit."""
    url = PG_URL.rsplit("/", 1)[0] + "/medcard_no_such_db" if PG_URL else ""
    url = url or f"sqlite:///{tmp_path / 'missing-dir' / 'x' / 'db.sqlite3'}"
    settings = Settings(database_url=url, data_dir=tmp_path, billing_sweep=False)
    engine = make_engine(settings)
    if not PG_URL:
        (tmp_path / "missing-dir" / "x").rmdir()  # make_engine made it; now unopenable
    try:
        with TestClient(create_app(settings, engine)) as http:
            resp = http.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["database"] == "down"
    finally:
        engine.dispose()
