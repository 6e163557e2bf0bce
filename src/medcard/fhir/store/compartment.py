"""The patient compartment key of a resource (R4 CompartmentDefinition 'patient').

A resource is filed under the first Patient its compartment parameters point to
(Observation: subject, then performer).  A Patient is its own compartment.
"""

from __future__ import annotations

from typing import Any

from medcard.fhir import spec
from medcard.fhir.search.paths import evaluate, reference_type
from medcard.fhir.search.registry import lookup


def patient_of(resource: dict[str, Any]) -> str:
    rtype = resource["resourceType"]
    if rtype == "Patient":
        return str(resource["id"])
    if rtype == "Binary":
        # R4 Binary.securityContext is the proxy for access decisions: a Binary whose
        # context is a Patient (an extract PDF) is filed in that patient's card, so the
        # gate keeps it from every other patient instead of treating it as shared data.
        ref = (resource.get("securityContext") or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/") and ref.count("/") == 1:
            return ref.split("/", 1)[1]
        return ""
    for param_name in spec.patient_compartment().get(rtype, ()):
        param = lookup(rtype, param_name)
        if param is None:
            continue
        for path in param.paths:
            for value in evaluate(resource, list(path)):
                ref = value.get("reference") if isinstance(value, dict) else None
                if isinstance(ref, str) and reference_type(ref) == "Patient":
                    parts = ref.split("/")
                    if len(parts) >= 4 and parts[-2] == "_history":
                        parts = parts[:-2]
                    return parts[-1]
    return ""
