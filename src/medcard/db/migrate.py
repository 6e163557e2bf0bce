"""Run Alembic migrations programmatically (``medcard db upgrade``, ``--migrate``, and on
``serve`` for SQLite), and tell whether a store's schema is the one this code needs.

A process started on a store that is not at this code's head revision would answer
500s on every table it cannot find; ``serve`` and ``worker`` refuse to start instead
(:func:`schema_problem`), and ``/readyz`` stays unready.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, text

# pg_advisory_xact_lock key held while migrating ("medcard" in ASCII): two processes
# started with --migrate at once upgrade one after the other; the second finds the
# schema at head and does nothing.
MIGRATION_LOCK_KEY = 0x6D656463617264


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", _script_location())
    # configparser reads "%" as interpolation: escape it (percent-encoded passwords, options)
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _script_location() -> str:
    return str(resources.files("medcard") / "migrations")


@cache
def _scripts() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", _script_location())
    return ScriptDirectory.from_config(cfg)


def head() -> str:
    """The revision this code needs."""
    rev = _scripts().get_current_head()
    assert rev is not None
    return rev


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade to ``revision``; returns the revision the store was at before.

    On PostgreSQL the whole upgrade runs in one transaction holding an advisory lock,
    and the current revision is read after the lock is taken, so concurrent upgrades
    serialise and only the first does any work.  SQLite's ``BEGIN IMMEDIATE`` (see
    ``db/engine.py``) serialises them the same way.
    """
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        before = _revision(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _revision(conn)


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def shown_url(engine: Engine) -> str:
    """The store's URL without its password (safe for logs and terminals)."""
    u = engine.url  # URL.set() ignores None, so the URL is rebuilt without the password
    bare = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query)
    return bare.render_as_string(hide_password=False)


def schema_problem(engine: Engine) -> str | None:
    """None when the store is at this code's head revision, else one line saying what
    is wrong and what to do."""
    have = current(engine)
    need = head()
    if have == need:
        return None
    where = f"database at {shown_url(engine)} is at revision {have or 'none'}"
    if have is not None and not known(have):
        return f"{where}, newer than this medcard knows (it needs {need}): upgrade medcard"
    return f"{where}, this medcard needs {need}: run `medcard db upgrade`"


def known(revision: str) -> bool:
    """Whether this code has a migration with this revision id."""
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for unknown or partial ids
        return False
