"""Audit entries for every access to patient data, appended once per request.

An entry is (who, client, action, resource, patient, when, outcome).  Entries made
while serving one request are buffered and written with a single multi-row insert:
inside the write transaction for writes (so a rolled-back write leaves no "success"
entry), in a short transaction of their own after reads and denials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, insert

from medcard.access.context import AccessContext
from medcard.clock import now_micros
from medcard.db.tables import audit_log

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


@dataclass
class AuditBuffer:
    ctx: AccessContext
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        interaction: str,
        resource_type: str = "",
        resource_id: str = "",
        patient_id: str = "",
        outcome: str = SUCCESS,
        detail: str = "",
    ) -> None:
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
            }
        )

    def flush(self, conn: Connection) -> None:
        if self.entries:
            conn.execute(insert(audit_log), self.entries)
            self.entries = []

    def flush_separately(self, engine: Engine) -> None:
        """Write read and denial entries in a short transaction of their own.

        On PostgreSQL this commit does not wait for the WAL flush (synchronous_commit
        off, for this transaction only): a read must not pay a disk sync, and the
        database still never keeps half an entry.  What such a commit risks is losing
        the last fraction of a second of read entries if the database server itself
        crashes; writes keep their synchronous commits.
        """
        if self.entries:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                self.flush(conn)
