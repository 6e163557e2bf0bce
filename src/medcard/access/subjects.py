"""Turn who someone is (role, FHIR resource, organisation) into what their tokens carry.

A practitioner's organisations come from their active PractitionerRole resources, so a
change of job in the record changes their access at the next sign-in.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, select

from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.clock import now_micros
from medcard.db.tables import break_glass


def practitioner_organizations(engine: Engine, practitioner_id: str) -> list[str]:
    from medcard.fhir.local import call

    ctx = AccessContext.system("system:access", purpose="resolve practitioner roles")
    resp = call(
        engine,
        ctx,
        "GET",
        f"PractitionerRole?practitioner=Practitioner/{practitioner_id}&active=true&_count=100",
    )
    if resp.status != 200:
        return []
    body = orjson.loads(resp.body_bytes())
    orgs = set()
    for entry in body.get("entry", []):
        ref = (entry.get("resource", {}).get("organization") or {}).get("reference", "")
        if ref.startswith("Organization/"):
            orgs.add(ref.split("/", 1)[1])
    return sorted(orgs)


def token_claims(
    engine: Engine, role: Role, fhir_ref: str = "", organization_ref: str = ""
) -> dict[str, Any]:
    """Claims that let the access gate rebuild the caller's context from a bearer token."""
    claims: dict[str, Any] = {"role": str(role)}
    orgs: list[str] = []
    if organization_ref.startswith("Organization/"):
        orgs.append(organization_ref.split("/", 1)[1])
    if role == Role.PRACTITIONER and fhir_ref.startswith("Practitioner/"):
        orgs += practitioner_organizations(engine, fhir_ref.split("/", 1)[1])
    if orgs:
        claims["orgs"] = sorted(set(orgs))
    return claims


def active_emergency_patients(engine: Engine, actor: str) -> frozenset[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(break_glass.c.patient_id).where(
                break_glass.c.actor == actor, break_glass.c.expires > now_micros()
            )
        ).scalars()
        return frozenset(rows)
