"""The one place that decides whether a caller may touch a resource type or compartment.

``restriction`` answers, for a (type, permission): not at all (403), everywhere, or
only inside some patient compartments (and, for reviewers, only some entries).  The
store turns a restriction into SQL predicates on every query, so search, includes,
history and operations share it.  Deny by default: a caller without a role gets
nothing but what system/ scopes grant.

What each role reaches (issue 3):
- patients: their own compartment and their dependants'; they never change or delete
  an entry somebody else made (checked by ``may_change`` on the stored version).  Who
  is a patient is ``AccessContext.acts_for_patient``, the one rule ``restriction``,
  ``may_change`` and ``stamp_author`` share (issue 17);
- practitioners: patients related to them (``relations.practitioner_patients``) and
  patients opened through emergency access;
- reviewers: only entries disputed in correction requests routed to their authority;
- labs and imaging centres: referrals addressed to them, and results for those;
- registrars and admins: demographics and attachments, not clinical content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medcard.access import relations
from medcard.access.context import AccessContext
from medcard.access.roles import (
    DEMOGRAPHIC_TYPES,
    LAB_READ_TYPES,
    RESULT_TYPES,
    Permission,
    Role,
    has,
)
from medcard.fhir import spec
from medcard.fhir.outcomes import forbidden

VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
# Marks what a patient entered themselves (family history, diary) so that it is
# labelled as such and so that a patient can only ever change their own entries.
ENTERED_BY_SYSTEM = "https://medcard.example/fhir/CodeSystem/entered-by"


@dataclass(frozen=True)
class Restriction:
    """``patients`` None means unrestricted.

    Otherwise rows pass when their compartment is in ``patients`` or in the SQL
    sub-select ``related``, or (reviewers) when (type, id) is in ``entries``.
    ``shared``: whether resources outside every patient compartment (Organization,
    Practitioner) pass too.
    """

    patients: frozenset[str] | None
    shared: bool = True
    related: Any = None
    entries: Any = None

    @property
    def unrestricted(self) -> bool:
        return self.patients is None

    @property
    def needs_database(self) -> bool:
        return self.related is not None or self.entries is not None

    def allows(self, resource_type: str, patient_id: str) -> bool:
        """The answer when it needs no database: explicit compartments and shared data.

        Callers with a ``related`` or ``entries`` part ask the store, which evaluates
        the same predicate in SQL (Repository._visible).
        """
        if self.patients is None:
            return True
        if patient_id:
            return patient_id in self.patients
        # Outside every compartment: shared reference data (Organization, Practitioner).
        return self.shared and not in_patient_compartment(resource_type)


def in_patient_compartment(resource_type: str) -> bool:
    return resource_type == "Patient" or resource_type in spec.patient_compartment()


def _refuse(resource_type: str, permission: str, why: str) -> Exception:
    return forbidden(f"Not allowed to {VERBS[permission]} {resource_type}: {why}")


def restriction(ctx: AccessContext, resource_type: str, permission: str) -> Restriction:
    levels = ctx.scopes.levels_granting(resource_type, permission)
    if not levels:
        raise forbidden(
            f"The access token does not allow to {VERBS[permission]} {resource_type} (scope missing)"
        )
    if ctx.acts_for_patient:
        # Whatever else the token says (system/ scopes, no role): a caller acting for
        # a patient reaches that patient's compartments and nothing more.
        if "patient" not in levels or not ctx.patient_ids:
            raise _refuse(resource_type, permission, "patients act through patient/ scopes")
        return _patient(ctx, resource_type, permission)
    role = ctx.role
    if role is None or role == Role.SYSTEM:
        if "system" in levels:
            return Restriction(None)
        raise _refuse(resource_type, permission, "the token names no role")
    if "user" not in levels and "system" not in levels:
        raise _refuse(resource_type, permission, f"a {role} acts through user/ scopes")
    return _staff(ctx, role, resource_type, permission)


def _patient(ctx: AccessContext, resource_type: str, permission: str) -> Restriction:
    # patient/ scopes reach the patient's own record; the clinic's reference data they
    # may read (who treated me, where) but never change, since every card shares it.
    return Restriction(ctx.patient_ids, shared=permission in ("r", "s"))


def _staff(ctx: AccessContext, role: Role, resource_type: str, permission: str) -> Restriction:
    writing = permission in ("c", "u", "d")
    if role == Role.PRACTITIONER:
        if writing and not in_patient_compartment(resource_type):
            raise _refuse(resource_type, permission, "reference data is changed by administrators")
        return Restriction(
            ctx.emergency_patients,
            shared=not writing,
            related=relations.practitioner_patients(ctx.organizations, ctx.practitioner_id),
        )
    if has(role, Permission.BILLING_READ) and resource_type == "ChargeItem" and permission in "rs":
        # issue 9: a polyclinic's administrator reads its own billing, no clinical content
        return Restriction(
            frozenset(), shared=False, entries=relations.billed_by(ctx.organizations)
        )
    if role in (Role.REGISTRAR, Role.ORG_ADMIN, Role.REGION_ADMIN):
        if resource_type not in DEMOGRAPHIC_TYPES:
            raise _refuse(
                resource_type, permission, f"a {role} works with demographics, not clinical content"
            )
        if (
            writing
            and not in_patient_compartment(resource_type)
            and not has(role, Permission.SHARED_WRITE)
        ):
            raise _refuse(resource_type, permission, "reference data is changed by administrators")
        if (
            writing
            and in_patient_compartment(resource_type)
            and not has(role, Permission.DEMOGRAPHICS_WRITE)
        ):
            raise _refuse(resource_type, permission, f"a {role} does not change patients' data")
        return Restriction(None)
    if role == Role.REVIEWER:
        if writing and resource_type != "Task":
            raise _refuse(
                resource_type,
                permission,
                "reviewers decide on reports; entries change through the decision",
            )
        return Restriction(
            frozenset(), shared=not writing, entries=relations.review_targets(ctx.organizations)
        )
    if role == Role.LAB:
        if (writing and resource_type not in RESULT_TYPES) or (
            not writing and resource_type not in LAB_READ_TYPES
        ):
            raise _refuse(
                resource_type,
                permission,
                "a laboratory delivers results for referrals addressed to it",
            )
        if permission == "d":
            raise _refuse(resource_type, permission, "delivered results are corrected, not deleted")
        return Restriction(
            frozenset(), shared=not writing, related=relations.lab_patients(ctx.organizations)
        )
    raise _refuse(resource_type, permission, "unknown role")


def entered_by_patient(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(t.get("system") == ENTERED_BY_SYSTEM and t.get("code") == "patient" for t in tags)


def stamp_author(ctx: AccessContext, resource: dict[str, Any]) -> dict[str, Any]:
    """Tag what a patient writes as patient-entered; nobody else can set or forge the tag."""
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag") or [] if t.get("system") != ENTERED_BY_SYSTEM]
    if ctx.acts_for_patient:
        tags.append(
            {"system": ENTERED_BY_SYSTEM, "code": "patient", "display": "Внесено пациентом"}
        )
    if tags:
        meta["tag"] = tags
    else:
        meta.pop("tag", None)
    if meta:
        return {**resource, "meta": meta}
    return {k: v for k, v in resource.items() if k != "meta"}


def may_change(ctx: AccessContext, current: dict[str, Any]) -> bool:
    """A patient may change or delete only what a patient entered; staff per their role."""
    if ctx.acts_for_patient:
        return entered_by_patient(current)
    return True


def lab_referrals(resource: dict[str, Any]) -> list[str]:
    """ServiceRequest ids a delivered result is based on."""
    out = []
    for ref in resource.get("basedOn") or []:
        text = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(text, str) and text.startswith("ServiceRequest/"):
            out.append(text.split("/", 1)[1])
    return out
