"""Which billable services a clinical entry stands for (entry → drafts of lines).

Rules, after the OMS payment methods of the Программа госгарантий:

* ``Encounter`` (finished): a visit bills its nomenclature visit code (``serviceType``,
  else the doctor's specialty: first visit); a preventive examination or
  dispanserization bills one completed case; an inpatient stay one case (КСГ); a
  diagnostic encounter bills nothing itself (its imaging study does);
* ``DiagnosticReport`` (final): a lab panel with a complex code bills one line, other
  panels one line per analyte (service = the Observation); an imaging report bills its
  nomenclature code with its ``ImagingStudy`` (service = the study);
* ``Immunization`` (completed, given here: ``primarySource`` not false): vaccination;
* ``Procedure`` (completed): its nomenclature code.

An entry whose service has no known code, or whose organisation cannot be told, gives
a ``Problem`` instead: flagged, never billed at a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from medcard.billing import nomenclature as nmu
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.terminology import reference as cat

SOURCE_TYPES: Final = ("Encounter", "DiagnosticReport", "Immunization", "Procedure")
DONE_REPORT: Final = ("final", "amended", "corrected", "appended")
STAGE_SYSTEM: Final = f"{cat.MEDCARD_FHIR_BASE}/CodeSystem/dispanserization-stage"

Resource = dict[str, Any]


@dataclass
class Draft:
    source: str  # the entry the line is keyed by
    service: nmu.Service
    quantity: Decimal
    date: str
    org_ref: str
    org_name: str
    context: str = ""  # Encounter/x
    service_ref: str = ""  # R4 ChargeItem.service target
    entries: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    source: str
    key: str  # page text key
    message: str


def _ref(value: Any) -> str:
    return str(value.get("reference", "")) if isinstance(value, dict) else ""


def _codes(concept: Any, system: str | None = None) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [
        str(c.get("code", ""))
        for c in concept.get("coding") or []
        if isinstance(c, dict) and (system is None or c.get("system") == system)
    ]


class Resolver:
    """Reads the organisation and specialty behind an entry, remembering what it read."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._cache: dict[str, Resource | None] = {}
        self._roles: dict[str, list[Resource]] = {}

    def get(self, ref: str) -> Resource | None:
        if ref not in self._cache:
            rtype, _, rid = ref.partition("/")
            try:
                self._cache[ref] = self.repo.read(rtype, rid).json() if rid else None
            except FhirError:
                self._cache[ref] = None
        return self._cache[ref]

    def roles(self, practitioner: str) -> list[Resource]:
        if practitioner not in self._roles:
            found = self.repo.search(
                parse("PractitionerRole", [("practitioner", practitioner), ("_count", "20")])
            ).matches
            self._roles[practitioner] = [m.json() for m in found]
        return self._roles[practitioner]

    def org(self, ref: str) -> tuple[str, str]:
        org = self.get(ref) if ref.startswith("Organization/") else None
        return (ref, str(org.get("name") or ref)) if org is not None else ("", "")

    def org_of(self, resource: Resource, *refs: Any) -> tuple[str, str]:
        """The performing organisation: named directly, else through the encounter, the
        location or the practitioner's role."""
        candidates = [_ref(r) for r in refs]
        for r in candidates:
            if r.startswith("Organization/"):
                found = self.org(r)
                if found[0]:
                    return found
        encounter = _ref(resource.get("encounter") or resource.get("context"))
        if encounter.startswith("Encounter/"):
            enc = self.get(encounter)
            if enc is not None:
                found = self.org(_ref(enc.get("serviceProvider")))
                if found[0]:
                    return found
        location = _ref(resource.get("location"))
        if location.startswith("Location/"):
            loc = self.get(location)
            if loc is not None:
                found = self.org(_ref(loc.get("managingOrganization")))
                if found[0]:
                    return found
        for r in candidates:
            if r.startswith("Practitioner/"):
                for role in self.roles(r):
                    found = self.org(_ref(role.get("organization")))
                    if found[0]:
                        return found
        return "", ""

    def specialty_visit(self, practitioner: str) -> nmu.Service | None:
        for role in self.roles(practitioner):
            for concept in role.get("specialty") or []:
                for code in _codes(concept, cat.SPECIALTY_SYSTEM):
                    spec = cat.SPECIALTIES.get(code)
                    if spec is not None and spec.nmu_first:
                        return nmu.get(spec.nmu_first)
        return None


def _participants(enc: Resource) -> list[str]:
    return [
        _ref(p.get("individual"))
        for p in enc.get("participant") or []
        if isinstance(p, dict) and _ref(p.get("individual")).startswith("Practitioner/")
    ]


def _unknown(ref: str, what: str) -> Problem:
    return Problem(ref, "bill_flag_unknown_code", f"{ref}: no known service code for {what}")


def _no_org(ref: str) -> Problem:
    return Problem(ref, "bill_flag_no_org", f"{ref}: the performing organisation is not known")


def encounter(res: Resource, r: Resolver) -> tuple[list[Draft], list[Problem]]:
    ref = f"Encounter/{res['id']}"
    if res.get("status") != "finished":
        return [], []
    kinds = {c for t in res.get("type") or [] for c in _codes(t, cat.ENCOUNTER_KIND_SYSTEM)}
    cls = (res.get("class") or {}).get("code")
    if "diagnostic" in kinds:
        return [], []
    service: nmu.Service | None
    if "hospitalization" in kinds or cls == "IMP":
        service = nmu.get(nmu.HOSPITAL_CASE)
    elif kinds & set(nmu.EXAM_CASES):
        kind = next(k for k in nmu.EXAM_CASES if k in kinds)
        stage = {c for t in res.get("type") or [] for c in _codes(t, STAGE_SYSTEM)}
        code = "disp-2" if kind == "dispanserization" and "2" in stage else nmu.EXAM_CASES[kind]
        service = nmu.get(code)
    else:
        service = nmu.from_concept(res.get("serviceType"))
        if service is None:
            for prac in _participants(res):
                service = r.specialty_visit(prac)
                if service is not None:
                    break
    if service is None:
        return [], [_unknown(ref, "the visit")]
    org_ref, org_name = r.org_of(res, res.get("serviceProvider"), *map(_wrap, _participants(res)))
    if not org_ref:
        return [], [_no_org(ref)]
    date = str((res.get("period") or {}).get("start", ""))
    return [
        Draft(ref, service, Decimal(1), date, org_ref, org_name, context=ref, entries=[ref])
    ], []


def _wrap(ref: str) -> Resource:
    return {"reference": ref}


def _category(res: Resource) -> set[str]:
    return {c for cat_ in res.get("category") or [] for c in _codes(cat_)}


def report(res: Resource, r: Resolver) -> tuple[list[Draft], list[Problem]]:
    ref = f"DiagnosticReport/{res['id']}"
    if res.get("status") not in DONE_REPORT:
        return [], []
    categories = _category(res)
    performers = res.get("performer") or []
    org_ref, org_name = r.org_of(res, *performers)
    date = str(res.get("effectiveDateTime") or res.get("issued") or "")
    context = _ref(res.get("encounter"))
    context = context if context.startswith("Encounter/") else ""
    results = [_ref(x) for x in res.get("result") or [] if _ref(x).startswith("Observation/")]
    if "LAB" in categories or "laboratory" in categories:
        panel = next(
            (nmu.PANEL_SERVICES[c] for c in _codes(res.get("code")) if c in nmu.PANEL_SERVICES),
            "",
        )
        if not org_ref:
            return [], [_no_org(ref)]
        if panel:
            service = nmu.get(panel)
            assert service is not None
            return [
                Draft(
                    ref, service, Decimal(1), date, org_ref, org_name, context, ref, [ref, *results]
                )
            ], []
        drafts, problems = [], []
        for obs_ref in results:
            obs = r.get(obs_ref)
            if obs is None:
                continue
            code = next(
                (
                    nmu.ANALYTE_SERVICES[c]
                    for c in _codes(obs.get("code"), cat.LOINC_SYSTEM)
                    if c in nmu.ANALYTE_SERVICES
                ),
                "",
            )
            service = nmu.get(code) if code else None
            if service is None:
                problems.append(_unknown(obs_ref, "the lab test"))
                continue
            drafts.append(
                Draft(
                    obs_ref,
                    service,
                    Decimal(1),
                    str(obs.get("effectiveDateTime") or date),
                    org_ref,
                    org_name,
                    context,
                    obs_ref,
                    [obs_ref, ref],
                )
            )
        if not drafts and not problems:
            problems.append(_unknown(ref, "the lab report"))
        return drafts, problems
    if "RAD" in categories or "imaging" in categories:
        service = nmu.from_concept(res.get("code"))
        studies = [_ref(s) for s in res.get("imagingStudy") or [] if _ref(s)]
        if service is None:
            for study_ref in studies:
                study = r.get(study_ref) or {}
                for concept in study.get("procedureCode") or []:
                    service = service or nmu.from_concept(concept)
        if service is None:
            return [], [_unknown(ref, "the imaging study")]
        if not org_ref:
            return [], [_no_org(ref)]
        return [
            Draft(
                ref,
                service,
                Decimal(1),
                date,
                org_ref,
                org_name,
                context,
                studies[0] if studies else ref,
                [ref, *studies],
            )
        ], []
    return [], []  # other reports (e.g. a pathology note) are not billed here


def immunization(res: Resource, r: Resolver) -> tuple[list[Draft], list[Problem]]:
    ref = f"Immunization/{res['id']}"
    if res.get("status") != "completed" or res.get("primarySource") is False:
        return [], []  # recorded from another source (a maternity ward's discharge)
    service = nmu.get(nmu.VACCINATION)
    assert service is not None
    actors = [p.get("actor") for p in res.get("performer") or [] if isinstance(p, dict)]
    org_ref, org_name = r.org_of(res, *actors)
    if not org_ref:
        return [], [_no_org(ref)]
    date = str(res.get("occurrenceDateTime") or res.get("recorded") or "")
    context = _ref(res.get("encounter"))
    return [
        Draft(
            ref,
            service,
            Decimal(1),
            date,
            org_ref,
            org_name,
            context if context.startswith("Encounter/") else "",
            ref,
            [ref],
        )
    ], []


def procedure(res: Resource, r: Resolver) -> tuple[list[Draft], list[Problem]]:
    ref = f"Procedure/{res['id']}"
    if res.get("status") != "completed":
        return [], []
    service = nmu.from_concept(res.get("code"))
    if service is None:
        return [], [_unknown(ref, "the procedure")]
    performers = res.get("performer") or []
    refs = [p.get(k) for p in performers if isinstance(p, dict) for k in ("onBehalfOf", "actor")]
    org_ref, org_name = r.org_of(res, *refs)
    if not org_ref:
        return [], [_no_org(ref)]
    performed = res.get("performedDateTime") or (res.get("performedPeriod") or {}).get("start")
    context = _ref(res.get("encounter"))
    return [
        Draft(
            ref,
            service,
            Decimal(1),
            str(performed or ""),
            org_ref,
            org_name,
            context if context.startswith("Encounter/") else "",
            ref,
            [ref],
        )
    ], []


RULES: Final[dict[str, Callable[[Resource, Resolver], tuple[list[Draft], list[Problem]]]]] = {
    "Encounter": encounter,
    "DiagnosticReport": report,
    "Immunization": immunization,
    "Procedure": procedure,
}


def drafts_for(res: Resource, r: Resolver) -> tuple[list[Draft], list[Problem]]:
    rule = RULES.get(str(res.get("resourceType")))
    return rule(res, r) if rule is not None else ([], [])
