"""Audit entries for the authorization server: every issue, refusal and revocation.

Entries made while serving one request are collected on the request and written with
one append at its end (``AuditBuffer.flush_separately``).  Details name clients, scopes
and reasons, never a secret, code or token value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.smart import Scopes
from medcard.audit.recorder import DENIED, FAILED, SUCCESS, AuditBuffer

AUTHORIZE = "oauth-authorize"
TOKEN = "oauth-token"  # noqa: S105 - an audit interaction name
REVOKE = "oauth-revoke"
INTROSPECT = "oauth-introspect"

__all__ = ["AUTHORIZE", "DENIED", "FAILED", "INTROSPECT", "REVOKE", "SUCCESS", "TOKEN", "Note"]


@dataclass
class _Entry:
    interaction: str
    outcome: str
    detail: str
    patient_id: str


@dataclass
class Note:
    """What one OAuth request did, to be written once at its end."""

    interaction: str
    actor: str = "anonymous"
    client_id: str = ""
    patient_id: str = ""
    entries: list[_Entry] = field(default_factory=list)

    def who(self, *, client_id: str = "", actor: str = "", patient_id: str = "") -> None:
        if client_id:
            self.client_id = client_id
            if self.actor == "anonymous":
                self.actor = f"Client/{client_id}"
        if actor:
            self.actor = actor
        if patient_id:
            self.patient_id = patient_id

    def add(
        self, outcome: str, detail: str, *, interaction: str = "", patient_id: str = ""
    ) -> None:
        self.entries.append(
            _Entry(interaction or self.interaction, outcome, detail, patient_id or self.patient_id)
        )

    def flush(self, engine: Engine) -> None:
        if not self.entries:
            return
        buf = AuditBuffer(AccessContext(self.actor, Scopes.parse(""), client_id=self.client_id))
        for e in self.entries:
            buf.add(e.interaction, patient_id=e.patient_id, outcome=e.outcome, detail=e.detail)
        self.entries = []
        buf.flush_separately(engine)
