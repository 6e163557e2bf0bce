"""Tamper evidence for the audit log: a hash chain over entries, sealed after insert.

Requests insert their entries unsealed (``chain_seq`` and ``hash`` empty), so the hot
path never waits for a global order.  A sealer then takes the unsealed entries in id
order and links each to the chain head::

    chain_seq = previous chain_seq + 1
    hash      = sha256(previous hash (hex) + canonical JSON of the entry)

The canonical JSON holds every column of the entry except ``hash`` (``chain_seq``
included, so moving an entry to another place in the chain breaks it), keys sorted,
UTF-8, no spaces, empty values ("" , NULL, false) left out; the first entry's previous
hash is 64 zeros.  Leaving out empty values keeps old links valid when a later
migration adds a column with an empty default, while every value that was ever set
stays covered.  The chain follows sealing order, not id order: on PostgreSQL an entry
whose transaction commits late is sealed after entries with higher ids.

Sealers are serialised: on PostgreSQL by a transaction-scoped advisory lock held for
one short transaction; on SQLite by the database write lock (the recorder seals inside
the inserting transaction).  The unique index on ``chain_seq`` makes a violation of
that order fail instead of forking the chain.  On PostgreSQL a request only tries the
lock: when another request is sealing, it leaves its entries to that sealer or the
next one rather than queue (``medcard audit seal`` catches up after a quiet period).

What it proves: :func:`verify` recomputes the chain and names the first broken link,
so editing, deleting, reordering or un-sealing any sealed entry is found.  What it
cannot prove on its own: that nobody removed the newest entries or rewrote the whole
chain with fresh hashes (anyone with write access can recompute SHA-256).  Against
that, record the head that ``medcard audit verify`` prints somewhere the database's
administrators cannot write, and check it later with ``--expect SEQ:HASH``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    bindparam,
    func,
    select,
    text,
    union_all,
    update,
)

from medcard.db.tables import audit_log

log = logging.getLogger("medcard.audit")

GENESIS = "0" * 64
# pg_advisory_xact_lock key for sealers: b"mcaudit1" as a big-endian int64.
LOCK_KEY = int.from_bytes(b"mcaudit1", "big")
# At most this many entries per seal on the request path: a backlog (after a bulk load
# with sealing off, say) is worked off a batch per request instead of stalling one.
SEAL_BATCH = 256
VERIFY_CHUNK = 5000

_CHAIN_COLUMNS = ("chain_seq", "hash")
HASHED = tuple(str(c.name) for c in audit_log.c if c.name != "hash")


def canonical(entry: Any) -> bytes:
    """The bytes an entry's link hashes (``entry``: a row or mapping with every column)."""
    m = entry._mapping if hasattr(entry, "_mapping") else entry
    fields = {}
    for name in HASHED:
        value = m[name]
        if value is None or value == "" or value is False:
            continue
        fields[name] = value
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


def link(previous_hash: str, entry: Any) -> str:
    return hashlib.sha256(previous_hash.encode("ascii") + canonical(entry)).hexdigest()


# -- sealing -------------------------------------------------------------------------


# Built once: the request path runs these on every flush.
_SEAL = (
    update(audit_log)
    .where(audit_log.c.id == bindparam("b_id"), audit_log.c.chain_seq.is_(None))
    .values(chain_seq=bindparam("b_seq"), hash=bindparam("b_hash"))
)
_PG_LOCK = text(
    "SELECT set_config('synchronous_commit', :sync, true), pg_advisory_xact_lock(:key), true"
)
_PG_TRY_LOCK = text(
    "SELECT set_config('synchronous_commit', :sync, true), pg_try_advisory_xact_lock(:key)"
)


@lru_cache(maxsize=8)
def _head_and_unsealed(batch: int) -> CompoundSelect[Any]:
    """The chain head and the first ``batch`` unsealed entries, in one round trip."""
    head = (
        select(audit_log)
        .where(audit_log.c.chain_seq.is_not(None))
        .order_by(audit_log.c.chain_seq.desc())
        .limit(1)
        .subquery("head")
    )
    todo = (
        select(audit_log)
        .where(audit_log.c.chain_seq.is_(None))
        .order_by(audit_log.c.id)
        .limit(batch)
        .subquery("todo")
    )
    return union_all(select(head), select(todo))


def _seal_locked(conn: Connection, batch: int) -> int:
    """Seal up to ``batch`` unsealed entries; the caller holds the sealers' lock."""
    rows = conn.execute(_head_and_unsealed(batch)).all()
    todo = sorted((r for r in rows if r.chain_seq is None), key=lambda r: int(r.id))
    if not todo:
        return 0
    head = next((r for r in rows if r.chain_seq is not None), None)
    seq, previous = (int(head.chain_seq), str(head.hash)) if head else (0, GENESIS)
    params = []
    for row in todo:
        seq += 1
        entry = {**row._mapping, "chain_seq": seq}
        previous = link(previous, entry)
        params.append({"b_id": row.id, "b_seq": seq, "b_hash": previous})
    conn.execute(_SEAL, params)
    return len(todo)


def seal_in(conn: Connection, batch: int | None = None) -> int:
    """Seal inside a transaction that already serialises sealers (SQLite's write lock).

    Runs in a savepoint: a failed seal leaves the entries unsealed for the next one and
    never undoes the caller's own writes.
    """
    try:
        with conn.begin_nested():
            return _seal_locked(conn, batch or SEAL_BATCH)
    except Exception:  # the request's own work must not fail because of sealing
        log.exception("audit sealing failed; the entries stay unsealed for now")
        return 0


def seal_on(
    conn: Connection, batch: int | None = None, *, durable: bool = True, wait: bool = True
) -> int:
    """Seal up to ``batch`` entries in one short transaction on ``conn`` (none open).

    ``durable=False`` lets PostgreSQL commit without waiting for the WAL flush: a seal
    lost in a server crash only leaves its entries unsealed, to be sealed again.
    ``wait=False`` (PostgreSQL): if another sealer holds the lock, leave at once; it
    or the next seal takes these entries.
    """
    with conn.begin():
        if conn.dialect.name == "postgresql":
            # READ COMMITTED (the default): each statement after the lock sees what the
            # previous holder committed, so the head read next is the real head.
            got = conn.execute(
                _PG_LOCK if wait else _PG_TRY_LOCK,
                {"sync": "on" if durable else "off", "key": LOCK_KEY},
            ).one()[-1]
            if not got:
                return 0
        return _seal_locked(conn, batch or SEAL_BATCH)


def seal(engine: Engine, batch: int | None = None, *, durable: bool = True) -> int:
    """Seal up to ``batch`` unsealed entries in a transaction of their own; returns how many."""
    with engine.connect() as conn:
        return seal_on(conn, batch, durable=durable)


def seal_after_commit(conn: Connection, batch: int | None = None) -> int:
    """The request path's seal on a connection whose insert has committed.

    Never waits for another sealer (requests must not queue behind one another) and
    never raises (the entries are safely stored already): entries a running sealer did
    not see are sealed by the next request, or by ``medcard audit seal``.
    """
    try:
        return seal_on(conn, batch, durable=False, wait=False)
    except Exception:
        log.exception("audit sealing failed; the entries stay unsealed for now")
        return 0


def seal_all(engine: Engine, batch: int = 5000) -> int:
    """Seal everything unsealed (``medcard audit seal``), a batch per transaction."""
    total = 0
    while True:
        n = seal(engine, batch)
        total += n
        if n < batch:
            return total


# -- verification --------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What :func:`verify` found.  ``problem`` is empty when the chain is whole."""

    checked: int
    head_seq: int
    head_hash: str
    unsealed: int
    problem: str = ""
    broken_seq: int | None = None
    broken_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def head(self) -> str:
        return f"{self.head_seq}:{self.head_hash}"


def _sealed(engine: Engine, chunk: int) -> Iterator[Any]:
    """Sealed entries in chain order, a chunk per query (keyset paging)."""
    last: int | None = None
    while True:
        after = audit_log.c.chain_seq.is_not(None) if last is None else audit_log.c.chain_seq > last
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_log).where(after).order_by(audit_log.c.chain_seq).limit(chunk)
            ).all()
        yield from rows
        if len(rows) < chunk:
            return
        last = int(rows[-1].chain_seq)


def parse_anchor(value: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``medcard audit verify``."""
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise ValueError(f"expected SEQ:HASH (e.g. 1234:ab12...), got {value!r}")
    return int(seq), digest.lower()


def verify(
    engine: Engine, *, expect: tuple[int, str] | None = None, chunk: int = VERIFY_CHUNK
) -> Verdict:
    """Recompute the chain from its first link; stop at the first broken one."""
    previous, expected_seq, checked = GENESIS, 1, 0
    with engine.connect() as conn:
        unsealed = conn.execute(
            select(func.count()).select_from(audit_log).where(audit_log.c.chain_seq.is_(None))
        ).scalar_one()
        stray = conn.execute(
            select(audit_log.c.id)
            .where(audit_log.c.chain_seq.is_(None), audit_log.c.hash.is_not(None))
            .order_by(audit_log.c.id)
            .limit(1)
        ).scalar()

    def broken(problem: str, seq: int | None, entry_id: int | None) -> Verdict:
        return Verdict(checked, expected_seq - 1, previous, unsealed, problem, seq, entry_id)

    for row in _sealed(engine, chunk):
        seq = int(row.chain_seq)
        if seq != expected_seq:
            return broken(
                f"chain_seq {expected_seq} is missing (next found: {seq}, entry {row.id}): "
                "an entry was deleted or taken out of the chain",
                expected_seq,
                None,
            )
        if row.hash != link(previous, row):
            return broken(
                f"entry {row.id} at chain_seq {seq} does not match its hash: it was changed "
                "after sealing, or entries were reordered",
                seq,
                int(row.id),
            )
        if expect is not None and seq == expect[0] and row.hash != expect[1]:
            return broken(
                f"the anchor {expect[0]}:{expect[1][:12]}... does not match: "
                "the chain was rewritten up to this point",
                seq,
                int(row.id),
            )
        previous, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
    if stray is not None:
        return broken(
            f"entry {stray} has a hash but no chain_seq: it was taken out of the chain",
            None,
            int(stray),
        )
    if expect is not None and expect[0] > checked:
        return broken(
            f"the chain ends at {checked}, before the anchor {expect[0]}: "
            "sealed entries were removed from its end",
            expect[0],
            None,
        )
    return Verdict(checked, checked, previous, unsealed)
