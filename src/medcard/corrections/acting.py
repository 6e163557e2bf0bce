"""The service acting on a person's behalf, and the errors it answers with.

Deciding a report changes entries that neither the reviewer nor the patient may
change (the gate forbids reviewers every write but Task), so the service checks the
person's right itself (they see the report through the gate, they belong to its
authority) and then writes through a repository with system scopes whose audit actor is
still that person.  While it writes, ``in_service()`` is true: the guard on correction
Tasks lets only these writes change a report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository

_SERVICE: ContextVar[bool] = ContextVar("medcard_corrections_service", default=False)


class ReportError(FhirError):
    """A refusal with a page text key (``key``); the API shows ``diagnostics``."""

    def __init__(self, status: int, key: str, message: str) -> None:
        super().__init__(
            status, "business-rule" if status == 422 else _CODES.get(status, "invalid"), message
        )
        self.key = key


_CODES = {403: "forbidden", 404: "not-found", 409: "conflict", 400: "invalid"}


def in_service() -> bool:
    return _SERVICE.get()


# Set while the service files a report under its own entry locks (service.file_report),
# so the write hook does not try to take them a second time.
FILING: ContextVar[bool] = ContextVar("medcard_corrections_filing", default=False)


def service_context(ctx: AccessContext, purpose: str) -> AccessContext:
    """System scopes, the person's identity: what the audit records as the actor."""
    return AccessContext(
        actor=ctx.actor,
        scopes=Scopes.parse("system/*.cruds"),
        role=Role.SYSTEM,  # a service on the person's behalf, not the person's rules
        client_id=ctx.client_id,
        purpose=purpose,
        request_id=ctx.request_id,
        organizations=ctx.organizations,
        account_id=ctx.account_id,
    )


@contextmanager
def acting(engine: Engine, ctx: AccessContext, purpose: str) -> Iterator[Repository]:
    """One unit of work of the service on ``ctx``'s behalf; audit written on exit."""
    repo = Repository(engine, service_context(ctx, purpose))
    token = _SERVICE.set(True)
    try:
        with repo.unit_of_work():
            yield repo
    finally:
        _SERVICE.reset(token)
        repo.close()


def reader(engine: Engine, ctx: AccessContext, purpose: str) -> Repository:
    """An unrestricted repository for the service's own look-ups (caller closes it)."""
    return Repository(engine, service_context(ctx, purpose))
