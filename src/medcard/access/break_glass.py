"""Emergency access ("break glass"): a practitioner opens an unrelated patient's card.

It needs a stated reason, lasts a limited time, is audited as an emergency and shows
up in the patient's "who opened my card" list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, insert

from medcard.access.context import AccessContext
from medcard.access.roles import Permission, has
from medcard.audit.recorder import AuditBuffer
from medcard.clock import now_micros
from medcard.db.tables import break_glass
from medcard.fhir.outcomes import FhirError, bad_request, forbidden

DEFAULT_MINUTES = 60
MIN_REASON = 10


@dataclass(frozen=True)
class Grant:
    id: str
    patient_id: str
    expires: int


def grant(
    engine: Engine, ctx: AccessContext, patient_id: str, reason: str, minutes: int = DEFAULT_MINUTES
) -> Grant:
    if ctx.role is None or not has(ctx.role, Permission.BREAK_GLASS):
        raise forbidden("Emergency access is for practitioners")
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON:
        raise bad_request(
            f"State the reason for emergency access (at least {MIN_REASON} characters)"
        )
    if not 1 <= minutes <= 24 * 60:
        raise bad_request("Emergency access lasts between 1 minute and 24 hours")
    from medcard.fhir.local import call

    exists = call(
        engine,
        AccessContext.system("system:break-glass"),
        "GET",
        f"Patient?_id={patient_id}&_summary=count",
    )
    if exists.status != 200 or b'"total":0' in exists.body_bytes():
        raise FhirError(404, "not-found", f"Patient/{patient_id} is not known")
    now = now_micros()
    row = Grant(uuid.uuid4().hex, patient_id, now + minutes * 60_000_000)
    audit = AuditBuffer(ctx)
    with engine.begin() as conn:
        conn.execute(
            insert(break_glass).values(
                id=row.id,
                account_id=ctx.account_id,
                actor=ctx.actor,
                patient_id=patient_id,
                reason=reason,
                started=now,
                expires=row.expires,
            )
        )
        # In the grant's own transaction: no grant exists without its audit entry.
        audit.add(
            "break-glass",
            "Patient",
            patient_id,
            patient_id,
            detail=f"emergency access: {reason}",
            purpose=reason,
            emergency=True,
        )
        audit.flush(conn)
    return row
