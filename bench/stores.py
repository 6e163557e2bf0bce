"""A fresh, throwaway store for each run: a temp dir for SQLite, a new PostgreSQL database."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"


@dataclass(frozen=True)
class Store:
    kind: str  # "sqlite" | "postgres"
    data_dir: Path  # MEDCARD_DATA_DIR: signing key, SQLite file
    database_url: str  # "" for the default SQLite file in data_dir

    @property
    def database_name(self) -> str:
        return self.database_url.split("?", 1)[0].rsplit("/", 1)[-1] if self.database_url else ""

    def env(self) -> dict[str, str]:
        env = {"MEDCARD_DATA_DIR": str(self.data_dir)}
        env["MEDCARD_DATABASE_URL"] = self.database_url
        return env

    def settings(self):  # type: ignore[no-untyped-def]
        from medcard.config import Settings

        return Settings(data_dir=self.data_dir, database_url=self.database_url)

    def size_bytes(self) -> int:
        """On-disk size of the store (PostgreSQL: pg_database_size; SQLite: file + WAL)."""
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self.database_url) as conn:
                row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                return int(row[0]) if row else 0
        return sum(p.stat().st_size for p in self.data_dir.glob("medcard.sqlite3*"))


def _admin(pg_base: str) -> str:
    return pg_base.rstrip("/") + "/postgres"


@contextmanager
def fresh_store(
    kind: str, pg_base: str = DEFAULT_PG, keep: bool = False, pg_options: str = ""
) -> Iterator[Store]:
    """Yield an empty, migrated store; remove it afterwards unless ``keep``.

    ``pg_options`` is passed to PostgreSQL sessions as libpq ``options`` (e.g.
    ``-c plan_cache_mode=force_custom_plan``), for A/B runs of server settings.
    """
    from medcard.db.engine import make_engine
    from medcard.db.migrate import upgrade

    data_dir = Path(tempfile.mkdtemp(prefix=f"medcard-bench-{kind}-"))
    name = ""
    try:
        if kind == "postgres":
            import psycopg

            name = f"medcard_bench_{secrets.token_hex(5)}"
            with psycopg.connect(_admin(pg_base), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = f"{pg_base.rstrip('/')}/{name}"
            if pg_options:
                url += "?" + urlencode({"options": pg_options}, quote_via=quote)
            store = Store(kind, data_dir, url)
        elif kind == "sqlite":
            store = Store(kind, data_dir, "")
        else:
            raise ValueError(f"unknown store kind {kind!r}")
        # Migrate without the session options: alembic puts the URL in a configparser,
        # which rejects the '%' of an encoded query (see the report on migrate.py).
        plain = Store(store.kind, store.data_dir, store.database_url.split("?", 1)[0])
        engine = make_engine(plain.settings())
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield store
    finally:
        if name and not keep:
            import psycopg

            with psycopg.connect(_admin(pg_base), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
