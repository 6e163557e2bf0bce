"""Non-blocking named locks shared by every process on PostgreSQL (advisory locks), or
by the threads of the one process that serves an SQLite store.

A request that finds a name taken gives up at once instead of queueing: callers use
this where the one holding the lock is doing exactly what the latecomer wants done
(two identical submissions at the same moment), so the latecomer's answer is "already
done".  Waiting would hold a pooled connection per waiter, and the holder's write may
need one more; twenty at once could drain the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, text

# Namespaces (int32) of the names locked here.
FILING_LOCKS = 0x636F7272  # entries being disputed in a correction report ("corr")

_local_lock = threading.Lock()
_local_held: set[tuple[int, str]] = set()


@contextmanager
def try_locks(engine: Engine, namespace: int, names: Sequence[str]) -> Iterator[bool]:
    """Take every lock of ``names`` (in ``namespace``, an int32) or none; yields whether
    they were taken, and releases them when the block ends (after the caller's
    transaction has committed, so the next holder sees what this one wrote)."""
    wanted = sorted(set(names))
    if engine.dialect.name != "postgresql":
        keys = [(namespace, n) for n in wanted]
        with _local_lock:
            taken = not any(k in _local_held for k in keys)
            if taken:
                _local_held.update(keys)
        try:
            yield taken
        finally:
            if taken:
                with _local_lock:
                    _local_held.difference_update(keys)
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        got: list[str] = []
        try:
            for name in wanted:
                if not conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, hashtext(:name))"),
                    {"ns": namespace, "name": name},
                ).scalar():
                    break
                got.append(name)
            yield len(got) == len(wanted)
        finally:
            for name in got:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:ns, hashtext(:name))"),
                    {"ns": namespace, "name": name},
                )
