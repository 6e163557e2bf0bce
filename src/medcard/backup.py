"""Backups of the whole store, taken while the server runs, and restores into an empty store.

SQLite: SQLite's online backup API copies a consistent snapshot page by page while
writers continue (https://www.sqlite.org/backup.html); the backup is itself an SQLite
database.  PostgreSQL: ``pg_dump`` in its custom format (one consistent snapshot of
every table, the audit chain and the schema version included), restored with
``pg_restore`` in one transaction, so a failed restore leaves nothing half-written.

A restore goes into an empty store only (a store holding resources is refused unless
forced), because merging two histories of the same records is not a restore.  The
server's signing key (``signing-key.json`` in the data directory) is a secret and is
not in the backup: keep it with your other secrets.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.engine import make_url

from medcard.db.tables import resource_versions, resources

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class StoreCounts:
    resources: int
    versions: int

    def __str__(self) -> str:
        return f"{self.resources} resources, {self.versions} versions"


def counts(engine: Engine) -> StoreCounts:
    """How much the store holds (0/0 for a store without tables)."""
    if not inspect(engine).has_table("resources"):
        return StoreCounts(0, 0)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(resources)).scalar_one()
        v = conn.execute(select(func.count()).select_from(resource_versions)).scalar_one()
    return StoreCounts(int(n), int(v))


def backup(engine: Engine, target: Path) -> StoreCounts:
    """Write a consistent copy of the store to ``target`` (a new file)."""
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if engine.dialect.name == "sqlite":
            _sqlite_backup(_sqlite_path(engine), partial)
        elif engine.dialect.name == "postgresql":
            _pg_run("pg_dump", engine, "--format=custom", "--no-owner", "--no-privileges",
                    "--file", str(partial))  # fmt: skip
        else:
            raise BackupError(f"no backup for {engine.dialect.name}")
        partial.replace(target)  # only a finished backup gets the name asked for
    finally:
        partial.unlink(missing_ok=True)
    return counts_in_backup(target) if engine.dialect.name == "sqlite" else counts(engine)


def restore(engine: Engine, source: Path, *, force: bool = False) -> StoreCounts:
    """Load a backup made by :func:`backup` into this (empty) store."""
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    kind = backup_kind(source)
    if kind != engine.dialect.name:
        raise BackupError(
            f"{source} is a {kind} backup; the configured store is {engine.dialect.name}"
        )
    present = counts(engine)
    if present.resources and not force:
        raise BackupError(
            f"the store is not empty ({present}); restore into an empty store, "
            "or pass --force to replace everything in it"
        )
    if kind == "sqlite":
        engine.dispose()  # no pooled connection may hold the old pages
        _sqlite_backup(source, _sqlite_path(engine))
    else:
        engine.dispose()
        _pg_clear(engine)
        _pg_run("pg_restore", engine, "--no-owner", "--no-privileges", "--single-transaction",
                "--exit-on-error", str(source))  # fmt: skip
    return counts(engine)


def backup_kind(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a medcard backup (neither SQLite nor pg_dump custom format)")


def counts_in_backup(path: Path) -> StoreCounts:
    """Counts inside an SQLite backup file (read-only)."""
    conn = sqlite3.connect(path)
    try:
        n = conn.execute("SELECT count(*) FROM resources").fetchone()[0]
        v = conn.execute("SELECT count(*) FROM resource_versions").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a medcard store: {exc}") from None
    finally:
        conn.close()
    return StoreCounts(int(n), int(v))


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite store cannot be backed up")
    return Path(database)


def _sqlite_backup(source: Path, target: Path) -> None:
    """Copy with the online backup API: a consistent snapshot even while others write."""
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        dst.execute("PRAGMA busy_timeout=30000")
        # pages=-1: one step, so no writer can make the copy start over again and again
        src.backup(dst, pages=-1)
        dst.commit()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"SQLite backup from {source} to {target} failed: {exc}") from None
    finally:
        dst.close()
        src.close()


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in PG_BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    raise BackupError(f"{name} is not installed (apt-get install postgresql-client-15)")


def _pg_run(tool: str, engine: Engine, *args: str) -> None:
    """Run pg_dump/pg_restore against the store; the password goes by environment,
    never on the command line (visible to every user of the machine)."""
    url = make_url(engine.url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    conn_args = ["--dbname", url.database or "postgres"]
    if url.host:
        conn_args += ["--host", url.host]
    if url.port:
        conn_args += ["--port", str(url.port)]
    if url.username:
        conn_args += ["--username", url.username]
    cmd = [_pg_tool(tool), *conn_args, "--no-password", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - fixed tool, our arguments
    if done.returncode != 0:
        raise BackupError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _pg_clear(engine: Engine) -> None:
    """Drop the (empty or forced) store's tables so the dump recreates them as they were."""
    with engine.begin() as conn:
        names = inspect(conn).get_table_names()
        for name in names:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}" CASCADE')
        for (fn,) in conn.exec_driver_sql(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.prokind = 'f'"
        ):
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {fn} CASCADE")
    engine.dispose()
