"""Pre-write hooks: domain rules the store applies to every create, update and delete.

The FHIR core knows nothing of regions or the well-being diary, yet their rules must
hold on every path that writes (API, transactions, pages, CLI).  Domain packages
register a hook here; the repository calls each one with the resource as it will be
stored (author tag stamped, compartment known) inside the write's transaction.  A
hook refuses by raising ``FhirError`` (403 with the reason, 422 for implausible
data); the whole write (and a transaction Bundle) then fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from medcard.access.context import AccessContext


@dataclass(frozen=True)
class WriteEvent:
    engine: Engine
    ctx: AccessContext
    resource: dict[str, Any]  # as it will be stored (meta.tag stamped); on delete, as stored
    patient_id: str  # compartment, "" outside every patient compartment
    interaction: str  # "create" | "update" | "delete"
    # The write's own transaction: a hook may take locks that last until its commit.
    conn: Connection | None = None


WriteHook = Callable[[WriteEvent], None]

_HOOKS: dict[str, WriteHook] = {}


def register(name: str, hook: WriteHook) -> None:
    """Register (or replace, so re-imports are harmless) the hook called ``name``."""
    _HOOKS[name] = hook


def unregister(name: str) -> None:
    _HOOKS.pop(name, None)


def before_write(event: WriteEvent) -> None:
    for hook in tuple(_HOOKS.values()):
        hook(event)
