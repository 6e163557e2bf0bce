"""The store a CLI command works on: the configured one, migrated when it is embedded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine


@contextmanager
def open_store() -> Iterator[Engine]:
    """An engine on MEDCARD_DATABASE_URL; an embedded SQLite store is upgraded first
    (as ``serve`` does), PostgreSQL is migrated explicitly with ``medcard db upgrade``."""
    from medcard.auth import epochs
    from medcard.config import Settings
    from medcard.db.engine import make_engine
    from medcard.db.migrate import upgrade

    settings = Settings()
    engine = make_engine(settings)
    epochs.configure(settings.redis_url, listen=False)  # e.g. `users deactivate` tells workers
    try:
        if settings.is_sqlite:
            upgrade(engine)
        yield engine
    finally:
        engine.dispose()
