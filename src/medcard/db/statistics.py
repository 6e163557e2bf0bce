"""Planner statistics kept fresh right after writes (issue 13: fast from the first request).

A PostgreSQL store that has just received data over the API has no statistics until
autovacuum's next round (a minute or more, and only past its own thresholds), and
until then the planner guesses: a patient-scoped search right after a load of 1,000
Observations took 0.8-0.9 s instead of 13 ms.  So after each committed write the
store reports how many rows it put into each table; once a process has written
``CHECK_AFTER_ROWS`` rows since its last look, a background thread asks PostgreSQL
which of those tables changed by more than autovacuum's own rule (50 rows + 10 % of
the table, or never analysed) and runs a plain ``ANALYZE`` on
them, at most one at a time across all processes (an advisory lock), never in the
request's own time.  SQLite plans these searches well without statistics, and
``engine.optimize`` analyses it after bulk loads.

``MEDCARD_FRESH_STATISTICS=0`` turns it off (bench A/B runs).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

log = logging.getLogger("medcard.db")

CHECK_AFTER_ROWS = 200  # rows written by this process before it looks again
MIN_INTERVAL_S = 2.0  # between two looks of one process
ADVISORY_KEY = 0x6D656463  # "medc": one ANALYZE round at a time across processes


def enabled() -> bool:
    return os.environ.get("MEDCARD_FRESH_STATISTICS", "1").lower() not in ("0", "false", "no")


@dataclass
class _Pending:
    rows: Counter[str] = field(default_factory=Counter)
    last_look: float = -MIN_INTERVAL_S
    running: bool = False
    waiting: bool = False  # a round is set to start once MIN_INTERVAL_S has passed
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATE: dict[int, _Pending] = {}
_STATE_LOCK = threading.Lock()


def written(engine: Engine, rows: Mapping[str, int]) -> None:
    """Note rows a committed transaction wrote, by table; maybe start a round."""
    if engine.dialect.name != "postgresql" or not rows or not enabled():
        return
    with _STATE_LOCK:
        state = _STATE.setdefault(id(engine), _Pending())
    with state.lock:
        state.rows.update(rows)
    _maybe_start(engine, state)


def _maybe_start(engine: Engine, state: _Pending) -> None:
    """Start a round now, or once the interval has passed: the last batch of a load
    must not wait for writes that may never come."""
    with state.lock:
        if state.running or sum(state.rows.values()) < CHECK_AFTER_ROWS:
            return
        wait = state.last_look + MIN_INTERVAL_S - time.monotonic()
        if wait > 0:
            if not state.waiting:
                state.waiting = True
                timer = threading.Timer(wait, _after_wait, (engine, state))
                timer.daemon = True
                timer.start()
            return
        tables = dict(state.rows)
        state.rows.clear()
        state.running = True
        state.last_look = time.monotonic()
    threading.Thread(
        target=_round, args=(engine, state, tables), name="medcard-analyze", daemon=True
    ).start()


def _after_wait(engine: Engine, state: _Pending) -> None:
    with state.lock:
        state.waiting = False
    _maybe_start(engine, state)


def _round(engine: Engine, state: _Pending, tables: dict[str, int]) -> None:
    try:
        if analyse_stale(engine, tables) is None:  # another process's round: look again
            with state.lock:
                state.rows.update(tables)
    except Exception:  # a failed round is retried with the next writes; never fatal
        log.warning("could not refresh planner statistics", exc_info=True)
    finally:
        with state.lock:
            state.running = False
        _maybe_start(engine, state)  # what was written during the round


STATE_OF = text(
    """
    SELECT s.relname, s.n_mod_since_analyze, GREATEST(c.reltuples, 0),
           (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL)
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema() AND s.relname = ANY(:tables)
    ORDER BY s.relname
    """
)


def is_stale(counted: int, written: int, tuples: float, never_analysed: bool) -> bool:
    """Autovacuum's rule (50 rows + 10 % of the table), on the larger of the two counts."""
    changed = max(counted, written)
    return changed > 0 and (never_analysed or changed >= 50 + 0.1 * max(tuples, 0.0))


def analyse_stale(engine: Engine, written: Mapping[str, int]) -> list[str] | None:
    """ANALYZE the tables that changed past autovacuum's rule; returns their names
    (None when another round holds the lock).

    A table's change is the larger of what PostgreSQL counted (``n_mod_since_analyze``,
    which backends report up to a second late) and what this process wrote
    (``written``).  Skips the round when another process holds the lock: it is
    analysing already."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
        if not got:
            return None
        try:
            stale = []
            for name, counted, tuples, never in conn.execute(STATE_OF, {"tables": sorted(written)}):
                if is_stale(int(counted or 0), int(written.get(name, 0)), float(tuples), never):
                    stale.append(name)
            for name in stale:
                # names come from pg_stat_user_tables, quoted as identifiers
                conn.exec_driver_sql(f'ANALYZE "{name}"')
            return stale
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
