"""``medcard backup`` / ``medcard restore``: a restore into an empty store holds every
resource and every version, byte for byte, plus the audit trail."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import Engine, create_engine, select, text
from typer.testing import CliRunner

from medcard.backup import BackupError, backup, backup_kind, counts, restore
from medcard.cli.main import app as cli
from medcard.config import Settings
from medcard.db.engine import make_engine
from medcard.db.tables import INDEX_TABLES, audit_log, resource_versions, resources
from medcard.demo.loader import load_demo
from tests.conftest import PG_URL


def _rows(engine: Engine, table: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(table)))


def _fill(engine: Engine) -> None:
    """Demo cards plus updates and a deletion, so resources have several versions."""
    from medcard.access.context import AccessContext
    from medcard.access.smart import Scopes
    from medcard.fhir.store.repository import Repository

    load_demo(engine, 2, console=Console(file=io.StringIO()))
    repo = Repository(engine, AccessContext("system:test", Scopes.parse("system/*.*")))
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(resources.c.id).where(
            resources.c.resource_type == "Patient").limit(2))]  # fmt: skip
    for pid in ids:
        for n in range(3):
            doc = repo.read("Patient", pid).json()
            doc["name"][0]["given"] = [f"Версия{n}"]
            with repo.unit_of_work():
                repo.update("Patient", pid, doc)
    with engine.connect() as conn:
        obs = conn.execute(select(resources.c.id).where(
            resources.c.resource_type == "Observation").limit(1)).scalar_one()  # fmt: skip
    with repo.unit_of_work():
        repo.delete("Observation", obs)
    repo.close()


@pytest.fixture
def empty_store(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """A second, empty store on the same kind of database."""
    if PG_URL:
        name = f"medcard_restore_{uuid.uuid4().hex[:10]}"
        base = settings.resolved_database_url.rsplit("/", 1)[0]
        admin = create_engine(
            (base + "/postgres").replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        eng = make_engine(Settings(data_dir=tmp_path, database_url=f"{base}/{name}"))
        yield eng
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        eng = make_engine(Settings(data_dir=tmp_path / "restored"))
        yield eng
        eng.dispose()


def test_restore_into_an_empty_store_holds_every_resource_and_version(
    engine: Engine, empty_store: Engine, tmp_path: Path
) -> None:
    _fill(engine)
    before = counts(engine)
    assert before.versions > before.resources > 100
    target = tmp_path / "medcard.backup"
    assert backup(engine, target) == before
    assert backup_kind(target) == engine.dialect.name

    assert restore(empty_store, target) == before
    for table in (resources, resource_versions, audit_log, *INDEX_TABLES.values()):
        assert _rows(empty_store, table) == _rows(engine, table), table.name
    with empty_store.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == version

    # A second restore into the now full store is refused; --force replaces it.
    with pytest.raises(BackupError, match="not empty"):
        restore(empty_store, target)
    assert restore(empty_store, target, force=True) == before
    assert _rows(empty_store, resource_versions) == _rows(engine, resource_versions)


def test_backup_refuses_to_overwrite_and_restore_refuses_foreign_files(
    engine: Engine, tmp_path: Path
) -> None:
    existing = tmp_path / "exists.backup"
    existing.write_bytes(b"precious")
    with pytest.raises(BackupError, match="exists"):
        backup(engine, existing)
    assert existing.read_bytes() == b"precious"
    with pytest.raises(BackupError, match="not a medcard backup"):
        restore(engine, existing)
    other = b"PGDMP" if engine.dialect.name == "sqlite" else b"SQLite format 3\x00"
    foreign = tmp_path / "other-kind.backup"
    foreign.write_bytes(other + b"\x00" * 100)
    with pytest.raises(BackupError, match="backup; the configured store is"):
        restore(engine, foreign)


def test_the_cli_backs_up_and_restores(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(engine)
    monkeypatch.setenv("MEDCARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MEDCARD_DATABASE_URL", settings.database_url)
    target = tmp_path / "cli.backup"
    runner = CliRunner()
    done = runner.invoke(cli, ["backup", str(target)])
    assert done.exit_code == 0, done.output
    assert "Backup written" in done.output
    refused = runner.invoke(cli, ["restore", str(target)])
    assert refused.exit_code == 1
    assert "not empty" in refused.output
    again = runner.invoke(cli, ["backup", str(target)])
    assert again.exit_code == 1
    assert "exists" in again.output
