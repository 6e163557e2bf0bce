"""The FHIR API side of feature flags: patient-entered data of a disabled feature is refused.

Registered into ``medcard.fhir.hooks`` by ``install()``.  Applies to what patients
write (tagged "entered by patient"): family history (FamilyMemberHistory) and diary
readings (Observation).  Clinicians' own records and system imports are not features
a region can switch off.
"""

from __future__ import annotations

from medcard.access.policy import entered_by_patient
from medcard.fhir import hooks
from medcard.regions.features import Feature
from medcard.regions.gate import require_feature

FEATURE_OF_TYPE = {
    "FamilyMemberHistory": Feature.FAMILY_HISTORY,
    "Observation": Feature.DIARY,
}


def check_region_feature(event: hooks.WriteEvent) -> None:
    feature = FEATURE_OF_TYPE.get(event.resource.get("resourceType", ""))
    if feature is None or not event.patient_id or not entered_by_patient(event.resource):
        return
    if event.interaction == "delete":
        return  # a person may always remove what they entered, feature on or off
    require_feature(event.engine, event.patient_id, feature)


def install() -> None:
    hooks.register("regions.features", check_region_feature)
