"""Entries withdrawn as entered in error (issue 7): the store hides them from everyone.

R4 marks a record that should never have existed with the status
``entered-in-error`` (``status``, ``docStatus``, ``lifecycleStatus``, or the
``verificationStatus`` of a Condition or AllergyIntolerance).  The repository flags
such a current version as hidden: reads answer "not found", searches, ``_include``,
history and ``$everything`` leave it out, and it keeps no search-index rows.  Only an
auditor's repository (``Repository.include_hidden``) still reads it by id or history.
"""

from __future__ import annotations

from typing import Any

ENTERED_IN_ERROR = "entered-in-error"
STATUS_FIELDS = ("status", "docStatus", "lifecycleStatus")
VERIFICATION_FIELDS = ("verificationStatus",)
# Tag on a purged tombstone: the content was removed by an authority's order.
PURGED_SYSTEM = "https://medcard.example/fhir/CodeSystem/purged"


def entered_in_error(resource: dict[str, Any]) -> bool:
    if any(resource.get(f) == ENTERED_IN_ERROR for f in STATUS_FIELDS):
        return True
    for name in VERIFICATION_FIELDS:
        concept = resource.get(name)
        if isinstance(concept, dict):
            for coding in concept.get("coding") or []:
                if isinstance(coding, dict) and coding.get("code") == ENTERED_IN_ERROR:
                    return True
    return False


def tombstone(resource: dict[str, Any], reason: str) -> dict[str, Any]:
    """What is left of a purged version: type, id, version and the withdrawn status."""
    meta = resource.get("meta") or {}
    out: dict[str, Any] = {
        "resourceType": resource["resourceType"],
        "id": resource["id"],
        "meta": {k: meta[k] for k in ("versionId", "lastUpdated") if k in meta}
        | {"tag": [{"system": PURGED_SYSTEM, "code": "purged", "display": reason[:200]}]},
    }
    for name in STATUS_FIELDS:
        if name in resource:
            out[name] = ENTERED_IN_ERROR
    for name in VERIFICATION_FIELDS:
        if name in resource:
            out[name] = {"coding": [{"code": ENTERED_IN_ERROR}]}
    return out
