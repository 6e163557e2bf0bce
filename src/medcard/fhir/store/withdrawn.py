"""Entries withdrawn as entered in error (issues 7 and 21).

R4 marks a record that should never have existed with the status
``entered-in-error`` (``status``, ``docStatus``, ``lifecycleStatus``, or the
``verificationStatus`` of a Condition or AllergyIntolerance).  The repository flags
such a current version as hidden: searches, ``_include`` and ``$everything`` (so the
card) leave it out, it keeps no search-index rows, and nobody changes it any more.
Staff and system callers still read it by id and in its instance history, with that
status (R4 keeps such resources readable); for a patient and patient apps it is "not
found".  An entry an accepted correction withdrew (a ``Provenance`` with the activity
NULLIFY names it) is "not found" for everyone.  An auditor's repository
(``Repository.include_hidden``) reads and purges both.
"""

from __future__ import annotations

from typing import Any

ENTERED_IN_ERROR = "entered-in-error"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
NULLIFY = "NULLIFY"
STATUS_FIELDS = ("status", "docStatus", "lifecycleStatus")
VERIFICATION_FIELDS = ("verificationStatus",)
# Tag on a purged tombstone: the content was removed by an authority's order.
PURGED_SYSTEM = "https://medcard.example/fhir/CodeSystem/purged"


def nullifies(provenance: dict[str, Any]) -> bool:
    """A Provenance recording a withdrawal (v3 DataOperation NULLIFY), as corrections write."""
    activity = provenance.get("activity")
    codings = activity.get("coding") if isinstance(activity, dict) else None
    return any(
        isinstance(c, dict) and c.get("system") == DATA_OPERATION and c.get("code") == NULLIFY
        for c in codings or []
    )


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
