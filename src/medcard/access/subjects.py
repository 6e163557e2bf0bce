"""Turn who someone is (role, FHIR resource, organisation) into what their tokens carry.

A practitioner's organisations come from their active PractitionerRole resources, so a
change of job in the record changes their access at the next sign-in.
"""

from __future__ import annotations

from datetime import date
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


# Who may act for a patient: parents of children under 15 and guardians of wards
# (v3 RoleCode), recorded as a RelatedPerson in the dependant's compartment whose
# identifier is the representative's SNILS.
PARENT_CODES = frozenset(
    {"MTH", "FTH", "PRN", "NMTH", "NFTH", "STPMTH", "STPFTH", "ADOPTMTH", "ADOPTFTH"}
)
GUARDIAN_CODES = frozenset({"GUARD", "POWATT"})
CHILD_AGE_LIMIT = 15


def dependants(engine: Engine, patient_id: str, today: date | None = None) -> list[str]:
    """Patients this patient may act for: their children under 15 and their wards."""
    from medcard.fhir.local import call
    from medcard.identifiers import SNILS_SYSTEM

    ctx = AccessContext.system("system:access", purpose="resolve dependants")
    me = call(engine, ctx, "GET", f"Patient/{patient_id}")
    if me.status != 200:
        return []
    own = orjson.loads(me.body_bytes()).get("identifier", [])
    snils = [i.get("value") for i in own if i.get("system") == SNILS_SYSTEM and i.get("value")]
    if not snils:
        return []
    found = call(
        engine,
        ctx,
        "GET",
        f"RelatedPerson?identifier={SNILS_SYSTEM}|{snils[0]}&_include=RelatedPerson:patient&_count=50",
    )
    if found.status != 200:
        return []
    entries = [e["resource"] for e in orjson.loads(found.body_bytes()).get("entry", [])]
    births = {r["id"]: r.get("birthDate", "") for r in entries if r["resourceType"] == "Patient"}
    today = today or date.today()  # noqa: DTZ011 - a birthday is a local calendar date
    out = set()
    for rp in (r for r in entries if r["resourceType"] == "RelatedPerson"):
        if rp.get("active") is False:
            continue
        child = (rp.get("patient") or {}).get("reference", "").removeprefix("Patient/")
        codes = {c.get("code") for rel in rp.get("relationship", []) for c in rel.get("coding", [])}
        if not child or child == patient_id:
            continue
        if codes & GUARDIAN_CODES or (
            codes & PARENT_CODES and _younger_than(births.get(child, ""), CHILD_AGE_LIMIT, today)
        ):
            out.add(child)
    return sorted(out)


def _younger_than(birth: str, years: int, today: date) -> bool:
    try:
        born = date.fromisoformat(birth[:10])
    except ValueError:
        return False
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return age < years


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
    if role == Role.PATIENT and fhir_ref.startswith("Patient/"):
        kids = dependants(engine, fhir_ref.split("/", 1)[1])
        if kids:
            claims["patients"] = kids
    return claims


def active_emergency_patients(engine: Engine, actor: str) -> frozenset[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(break_glass.c.patient_id).where(
                break_glass.c.actor == actor, break_glass.c.expires > now_micros()
            )
        ).scalars()
        return frozenset(rows)
