"""Where a report can go: the five authority types and how each is found for a patient.

An authority is an Organization carrying its kind (``organization-kind`` coding) and
its region (the ``region`` extension).  For a patient:

* ``clinic``: the polyclinic's management — the patient's ``managingOrganization``;
* ``ministry``: the health ministry (department) of the polyclinic's region;
* ``insurer``: the payor of the patient's active OMS ``Coverage``;
* ``watchdog``: Roszdravnadzor's territorial office for that region;
* ``prosecutor``: the prosecutor's office of that region.

A report lands in the queue of exactly the organisation it names (``Task.owner``), and
only these five are accepted, so a report cannot be sent to an arbitrary organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from medcard.config import Settings
from medcard.corrections.model import (
    ORG_KIND_SYSTEM,
    REGION_EXTENSION_URL,
    codes,
    ref_id,
)
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository


class AuthorityType(StrEnum):
    CLINIC = "clinic"
    MINISTRY = "ministry"
    INSURER = "insurer"
    WATCHDOG = "watchdog"
    PROSECUTOR = "prosecutor"


# Organisation kinds (reference data) that act as each authority type.
KINDS: Final[dict[AuthorityType, tuple[str, ...]]] = {
    AuthorityType.CLINIC: ("polyclinic", "hospital"),
    AuthorityType.MINISTRY: ("ministry",),
    AuthorityType.INSURER: ("insurer",),
    AuthorityType.WATCHDOG: ("watchdog",),
    AuthorityType.PROSECUTOR: ("prosecutor",),
}
# 59-FZ art. 12: a written appeal is answered within 30 days (state bodies, municipal and
# state medical organisations, Roszdravnadzor; the prosecutor's office by its own
# instruction, also 30 days); insurers answer within 30 days under the OMS rules.
DEFAULT_DEADLINE_DAYS: Final[dict[AuthorityType, int]] = dict.fromkeys(AuthorityType, 30)


def deadline_days(settings: Settings | None, kind: AuthorityType) -> int:
    configured = settings.correction_deadline_days if settings is not None else {}
    days = configured.get(kind.value, DEFAULT_DEADLINE_DAYS[kind])
    return max(1, min(int(days), 365))


@dataclass(frozen=True)
class Authority:
    type: AuthorityType
    ref: str  # Organization/x
    name: str


def kind_of(org: dict[str, Any]) -> AuthorityType | None:
    kinds = {c for t in org.get("type") or [] for c in codes(t, ORG_KIND_SYSTEM)}
    for authority, names in KINDS.items():
        if kinds & set(names):
            return authority
    return None


def region_of(org: dict[str, Any]) -> str:
    for ext in org.get("extension") or []:
        if ext.get("url") == REGION_EXTENSION_URL:
            return str((ext.get("valueCoding") or {}).get("code", ""))
    return ""


def _name(org: dict[str, Any]) -> str:
    return str(org.get("name") or org.get("id") or "")


def _read(repo: Repository, ref: str) -> dict[str, Any] | None:
    if not ref.startswith("Organization/"):
        return None
    try:
        return repo.read("Organization", ref_id(ref)).json()
    except FhirError:
        return None


def route(repo: Repository, patient: dict[str, Any]) -> dict[AuthorityType, Authority]:
    """The authorities a report about ``patient``'s card may go to (``repo``: unrestricted)."""
    out: dict[AuthorityType, Authority] = {}
    clinic_ref = str((patient.get("managingOrganization") or {}).get("reference", ""))
    clinic = _read(repo, clinic_ref)
    region = ""
    if clinic is not None:
        out[AuthorityType.CLINIC] = Authority(AuthorityType.CLINIC, clinic_ref, _name(clinic))
        region = region_of(clinic)
    coverage = repo.search(
        parse(
            "Coverage",
            [("beneficiary", f"Patient/{patient['id']}"), ("status", "active"), ("_count", "10")],
        )
    ).matches
    for cov in coverage:
        for payor in cov.json().get("payor") or []:
            ref = str(payor.get("reference", ""))
            org = _read(repo, ref)
            if org is not None and kind_of(org) == AuthorityType.INSURER:
                out[AuthorityType.INSURER] = Authority(AuthorityType.INSURER, ref, _name(org))
                break
        if AuthorityType.INSURER in out:
            break
    if region:
        for kind in (AuthorityType.MINISTRY, AuthorityType.WATCHDOG, AuthorityType.PROSECUTOR):
            for name in KINDS[kind]:
                found = repo.search(
                    parse(
                        "Organization", [("type", f"{ORG_KIND_SYSTEM}|{name}"), ("_count", "100")]
                    )
                ).matches
                for org in sorted((s.json() for s in found), key=lambda o: str(o.get("id"))):
                    if region_of(org) == region and org.get("active", True):
                        out[kind] = Authority(kind, f"Organization/{org['id']}", _name(org))
                        break
                if kind in out:
                    break
    return out


def authority_of(repo: Repository, org_ref: str) -> Authority | None:
    org = _read(repo, org_ref)
    if org is None:
        return None
    kind = kind_of(org)
    return Authority(kind, org_ref, _name(org)) if kind is not None else None
