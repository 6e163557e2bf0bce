"""Which region a patient belongs to: the region of their attachment polyclinic.

The attachment (прикрепление) is the polyclinic in ``Patient.managingOrganization``;
failing that, the organisation of the general practitioner entry; failing that, the
region extension on the Patient itself.  An organisation's region is the region whose
configuration lists it, else the region extension on the Organization (or on the
organisation it is part of).

These lookups read attachment metadata through the store with a system context and
do not write its audit: they disclose nothing to anybody (the answer only decides
which features apply), and an entry per write would flood every patient's "who opened
my card" log with the server's own bookkeeping.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository
from medcard.regions.config import list_regions

REGION_EXTENSION_URL = "https://medcard.example/fhir/StructureDefinition/region"
_CTX = AccessContext.system("system:regions", purpose="region lookup")
_ORG_TTL = 30.0  # seconds an organisation's region is remembered (reference data)
_org_cache: dict[tuple[int, str], tuple[float, str | None]] = {}


def _read(engine: Engine, rtype: str, rid: str) -> dict[str, Any] | None:
    repo = Repository(engine, _CTX)  # not closed on purpose: see the module docstring
    try:
        return repo.read(rtype, rid).json()
    except FhirError:
        return None


def region_extension(resource: dict[str, Any]) -> str | None:
    for ext in resource.get("extension") or []:
        if ext.get("url") == REGION_EXTENSION_URL:
            code = (ext.get("valueCoding") or {}).get("code") or ext.get("valueCode")
            if isinstance(code, str) and code:
                return code
    return None


def _ref_id(ref: Any, rtype: str) -> str | None:
    text = ref.get("reference") if isinstance(ref, dict) else None
    if isinstance(text, str) and text.startswith(rtype + "/"):
        return text.split("/", 1)[1].split("/_history", 1)[0]
    return None


def region_of_organization(engine: Engine, org_id: str) -> str | None:
    key = (id(engine), org_id)
    hit = _org_cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < _ORG_TTL:
        return hit[1]
    found: str | None = None
    for region in list_regions(engine):
        if org_id in region.settings.organizations:
            found = region.code
            break
    seen: set[str] = set()
    current: str | None = org_id
    while found is None and current is not None and current not in seen and len(seen) < 5:
        seen.add(current)
        org = _read(engine, "Organization", current)
        if org is None:
            break
        found = region_extension(org)
        current = _ref_id(org.get("partOf"), "Organization")
    _org_cache[key] = (time.monotonic(), found)
    return found


def forget_organizations() -> None:
    """Drop remembered organisation regions (after a region's organisations change)."""
    _org_cache.clear()


def region_of_patient(engine: Engine, patient_id: str) -> str | None:
    """The region code of the patient's attachment polyclinic, or None if unknown."""
    patient = _read(engine, "Patient", patient_id) if patient_id else None
    if patient is None:
        return None
    candidates = [_ref_id(patient.get("managingOrganization"), "Organization")]
    candidates += [_ref_id(gp, "Organization") for gp in patient.get("generalPractitioner") or []]
    for org_id in candidates:
        if org_id:
            region = region_of_organization(engine, org_id)
            if region:
                return region
    return region_extension(patient)
