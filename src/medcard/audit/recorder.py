"""Audit entries for every access to patient data, appended once per request.

An entry is (who, client, action, resource, patient, when, outcome, purpose,
emergency, organisation).  Entries made while serving one request are buffered and
written with a single multi-row insert: inside the write transaction for writes (so a
rolled-back write leaves no "success" entry), in a short transaction of their own after
reads and denials.

Entries are inserted unsealed; :mod:`medcard.audit.chain` then links them into the
hash chain.  On SQLite the insert's transaction already holds the database's write
lock, so sealing happens right there (in a savepoint); on PostgreSQL it happens after
the commit, in a short transaction of its own under an advisory lock, so concurrent
requests never wait on each other while they hold a write transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, insert

from medcard.access.context import AccessContext
from medcard.audit import chain
from medcard.clock import now_micros
from medcard.db.tables import audit_log

# Seal entries as part of every flush (see the module docstring).  Off only to measure
# what sealing costs, or for bulk loads followed by ``medcard audit seal``.
SEAL_ON_FLUSH = True
# On PostgreSQL, sealing after commit costs a transaction of its own (about half a
# millisecond).  A process seals at most this often; entries written in between are
# sealed by the next seal, a batch at a time, so the chain is as complete as before
# and a busy server pays for one seal per interval instead of one per request.
SEAL_MIN_INTERVAL_SECONDS = 0.25
_last_seal = [0.0]
_async_engines: dict[str, Engine] = {}


def _async_commit_engine(engine: Engine) -> Engine:
    """A small autocommit pool beside ``engine`` whose sessions commit asynchronously.

    Only read and denial audit entries go through it: losing the last fraction of a
    second of them in a database crash is the accepted risk; writes and their audit
    entries commit synchronously in the write transaction.
    """
    from sqlalchemy import create_engine

    key = engine.url.render_as_string(hide_password=False)
    found = _async_engines.get(key)
    if found is None:
        found = create_engine(
            engine.url,
            isolation_level="AUTOCOMMIT",
            pool_size=4,
            max_overflow=8,
            pool_timeout=5,
            connect_args={
                "connect_timeout": 5,
                "prepare_threshold": None,
                "options": "-c synchronous_commit=off",
            },
        )
        _async_engines[key] = found
    return found


ACTIONS = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "search": "R",
    "history": "R",
    "update": "U",
    "delete": "D",
    "operation": "E",
    "everything": "R",
    "transaction": "E",
    "batch": "E",
}
SUCCESS, DENIED, FAILED = "0", "4", "8"
COMPACTED = frozenset({"create", "update", "delete"})


@dataclass
class AuditBuffer:
    ctx: AccessContext
    entries: list[dict[str, Any]] = field(default_factory=list)
    # Entries were inserted since the last seal (PostgreSQL seals after the commit).
    unsealed: bool = False

    def add(
        self,
        interaction: str,
        resource_type: str = "",
        resource_id: str = "",
        patient_id: str = "",
        outcome: str = SUCCESS,
        detail: str = "",
        *,
        purpose: str = "",
        emergency: bool = False,
        organization: str = "",
    ) -> None:
        """Buffer one entry.  ``purpose`` defaults to the access context's purpose;
        ``emergency`` marks access through break-glass (implied when the patient is one
        the caller opened by emergency access); ``organization`` is the organisation the
        actor acted for (by default the first of the context's organisations)."""
        emergency = emergency or (bool(patient_id) and patient_id in self.ctx.emergency_patients)
        if not organization and self.ctx.organizations:
            organization = f"Organization/{min(self.ctx.organizations)}"
        self.entries.append(
            {
                "recorded": now_micros(),
                "actor": self.ctx.actor,
                "client_id": self.ctx.client_id,
                "action": ACTIONS.get(interaction, "E"),
                "interaction": interaction,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "patient_id": patient_id,
                "outcome": outcome,
                "detail": detail[:2000],
                "request_id": self.ctx.request_id,
                "purpose": (purpose or self.ctx.purpose)[:255],
                "emergency": emergency,
                "organization": organization[:128],
            }
        )
        entry = self.entries[-1]
        for key, value in entry.items():
            # Details quote what clients sent (a path, a type), and PostgreSQL text cannot
            # hold NUL: one in a refused request's path made the audit write fail (500,
            # found by the reliability fuzzer).
            if isinstance(value, str) and "\x00" in value:
                entry[key] = value.replace("\x00", "\ufffd")

    def compacted(self) -> list[dict[str, Any]]:
        """One entry per (interaction, patient, outcome) for writes: a transaction that
        creates a hundred resources of one card is one audited act, not a hundred.

        The merged entry keeps the resource when there is one, else lists the resources
        in its detail (up to the column's size).
        """
        out: list[dict[str, Any]] = []
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}
        for e in self.entries:
            if e["interaction"] not in COMPACTED:
                out.append(e)
                continue
            key = (e["interaction"], e["patient_id"], e["outcome"], e["emergency"])
            first = merged.get(key)
            if first is None:
                merged[key] = dict(e, _refs=[f"{e['resource_type']}/{e['resource_id']}"])
                out.append(merged[key])
                continue
            first["_refs"].append(f"{e['resource_type']}/{e['resource_id']}")
        for e in out:
            refs = e.pop("_refs", None)
            if refs and len(refs) > 1:
                types = {r.split("/", 1)[0] for r in refs}
                e["resource_type"] = types.pop() if len(types) == 1 else ""
                e["resource_id"] = ""
                e["detail"] = f"{len(refs)} resources: {', '.join(refs)}"[:2000]
        return out

    def flush(self, conn: Connection) -> None:
        """Insert the buffered entries on ``conn`` (inside the caller's transaction)."""
        if not self.entries:
            return
        conn.execute(insert(audit_log), self.compacted())
        self.entries = []
        if not SEAL_ON_FLUSH:
            return
        if conn.dialect.name == "sqlite":
            # The insert holds SQLite's write lock until commit: sealing now is
            # serialised with every other writer and costs no extra transaction.
            chain.seal_in(conn)
        else:
            self.unsealed = True

    def flush_separately(self, engine: Engine) -> None:
        """Write read and denial entries in a short transaction of their own.

        On PostgreSQL this commit does not wait for the WAL flush (synchronous_commit
        off, for this transaction only): a read must not pay a disk sync, and the
        database still never keeps half an entry.  What such a commit risks is losing
        the last fraction of a second of read entries if the database server itself
        crashes; writes keep their synchronous commits.

        Also seals what this buffer flushed earlier inside a write transaction
        (PostgreSQL), now that it is committed.
        """
        if not self.entries and not self.unsealed:
            return
        if self.entries and engine.dialect.name == "postgresql":
            # One round trip: a single multi-row INSERT is atomic on its own, on a
            # connection whose commits do not wait for the WAL flush.
            with _async_commit_engine(engine).connect() as fast:
                self.flush(fast)
        if not self.entries and not self._seal_due():
            self.unsealed = False
            return
        with engine.connect() as conn:
            if self.entries:  # SQLite: insert and seal under the write lock
                with conn.begin():
                    self.flush(conn)
            if self.unsealed and self._seal_due(claim=True):
                # Same connection, next transaction: no second pool checkout.
                chain.seal_after_commit(conn)
            self.unsealed = False

    def _seal_due(self, *, claim: bool = False) -> bool:
        now = time.monotonic()
        due = self.unsealed and now - _last_seal[0] >= SEAL_MIN_INTERVAL_SECONDS
        if due and claim:
            _last_seal[0] = now
        return due
