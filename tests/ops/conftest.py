"""A database of its own per test, for tests that need a store at a chosen schema
revision (or none) rather than the suite's shared, migrated one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_URL, _pg_admin


@pytest.fixture
def fresh_db_url(tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new PostgreSQL database when the suite runs on
    PostgreSQL, else an SQLite file."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    admin_url, base = _pg_admin(PG_URL)
    name = f"medcard_fresh_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
