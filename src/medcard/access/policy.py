"""The one place that decides whether a caller may touch a resource type or compartment.

``restriction`` answers, for a (type, permission): not at all (403), everywhere, or
only inside these patient compartments.  The store turns a restriction into SQL
predicates on every query, so search, includes, history and operations share it.
"""

from __future__ import annotations

from dataclasses import dataclass

from medcard.access.context import AccessContext
from medcard.fhir import spec
from medcard.fhir.outcomes import forbidden

INTERACTION_PERMISSION = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "operation": "r",
}


@dataclass(frozen=True)
class Restriction:
    """None in ``patients`` means unrestricted.  ``shared``: whether resources outside
    every patient compartment (Organization, Practitioner) are let through too."""

    patients: frozenset[str] | None
    shared: bool = True

    @property
    def unrestricted(self) -> bool:
        return self.patients is None

    def allows(self, resource_type: str, patient_id: str) -> bool:
        if self.patients is None:
            return True
        if patient_id:
            return patient_id in self.patients
        # Outside every compartment: shared reference data (Organization, Practitioner).
        return self.shared and not in_patient_compartment(resource_type)


def in_patient_compartment(resource_type: str) -> bool:
    return resource_type == "Patient" or resource_type in spec.patient_compartment()


def restriction(ctx: AccessContext, resource_type: str, permission: str) -> Restriction:
    levels = ctx.scopes.levels_granting(resource_type, permission)
    if "system" in levels or "user" in levels:
        return Restriction(None)
    if "patient" in levels and ctx.patient_ids:
        # patient/ scopes reach the patient's own record; the clinic's reference data they
        # may read (who treated me, where) but never change, since every card shares it.
        return Restriction(ctx.patient_ids, shared=permission in ("r", "s"))
    verb = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}[permission]
    raise forbidden(f"The access token does not allow to {verb} {resource_type} (scope missing)")
