"""One builder per entry type: a submitted form becomes validated FHIR resources.

Builders only read (organisations, the referral a result answers); the service writes
what they return in one transaction and signs it.  The first resource returned is
the entry's main resource: it carries the form's submission key as an identifier.
Codes follow ``medcard.terminology.reference`` (as the demo does) so hand-written and generated entries agree.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medcard.entries.forms import Reader, instant
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.prevention import health_groups_for
from medcard.terminology import CATALOGS, ICD10, Concept
from medcard.terminology import reference as cat

Resource = dict[str, Any]
LAB_CATEGORY = ("108252007", "Laboratory procedure")
IMAGING_CATEGORY = ("363679005", "Imaging")
REFERRAL_CATEGORY = ("3457005", "Patient referral")
HOSPITAL_CATEGORY = ("183444007", "Referral for inpatient care")
MEDCARD = cat.MEDCARD_FHIR_BASE
STAGE_SYSTEM = f"{MEDCARD}/CodeSystem/dispanserization-stage"


@dataclass
class EntryContext:
    repo: Repository
    patient_id: str
    patient: Resource
    practitioner: str  # "Practitioner/x"
    practitioner_name: str
    organization: str  # "Organization/y" ("" when the author has none)
    organization_name: str
    now: dt.datetime
    ids: dict[str, str] = field(default_factory=dict)

    def id(self, name: str) -> str:
        """A fresh id for one resource of this entry (the same name gives the same id)."""
        return self.ids.setdefault(name, str(uuid.uuid4()))

    def ref(self, name: str, rtype: str) -> dict[str, str]:
        return {"reference": f"{rtype}/{self.id(name)}"}

    @property
    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.patient_id}"}

    @property
    def author(self) -> dict[str, str]:
        return {"reference": self.practitioner, "display": self.practitioner_name}

    @property
    def org(self) -> dict[str, str]:
        return {"reference": self.organization, "display": self.organization_name}

    @property
    def birth(self) -> dt.date | None:
        try:
            return dt.date.fromisoformat(str(self.patient.get("birthDate", ""))[:10])
        except ValueError:
            return None

    def age_on(self, day: dt.date) -> int:
        born = self.birth or day
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _cc(system: str, code: str, display: str, text: str | None = None) -> Resource:
    return {
        "coding": [{"system": system, "code": code, "display": display}],
        "text": text or display,
    }


def _after_birth(
    r: Reader, c: EntryContext, name: str, value: dt.datetime | dt.date | None
) -> None:
    birth = c.birth
    if value is None or birth is None:
        return
    day = value.date() if isinstance(value, dt.datetime) else value
    if day < birth:
        r.errs.add(name, "ws_err_before_birth")


def _div(*paragraphs: str) -> Resource:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p)
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


# -- visit with consultation protocol -------------------------------------------------

VISIT_KINDS = {"visit": "AMB", "home-visit": "HH"}


def build_visit(r: Reader, c: EntryContext) -> list[Resource]:
    when = r.when("date")
    _after_birth(r, c, "date", when)
    kind = r.choice("visit_kind", VISIT_KINDS)
    complaints = r.text("complaints", required=True)
    anamnesis = r.text("anamnesis")
    examination = r.text("examination", required=True)
    dx = r.icd10("diagnosis")
    recommendations = r.text("recommendations")
    r.errs.check()
    assert when is not None
    assert dx is not None
    start = instant(when)
    end = instant(when + dt.timedelta(minutes=20))
    kind_ru = cat.ENCOUNTER_KINDS[kind]
    encounter: Resource = {
        "resourceType": "Encounter",
        "id": c.id("encounter"),
        "status": "finished",
        "class": {
            "system": cat.V3_ACT_CODE,
            "code": VISIT_KINDS[kind],
            "display": "ambulatory" if kind == "visit" else "home health",
        },
        "type": [_cc(cat.ENCOUNTER_KIND_SYSTEM, kind, kind_ru)],
        "subject": c.subject,
        "participant": [
            {
                "type": [_cc(cat.V3_PARTICIPATION_TYPE, "ATND", "attender")],
                "individual": c.author,
            }
        ],
        "period": {"start": start, "end": end},
        "reasonCode": [dx.codeable()],
        "diagnosis": [{"condition": c.ref("condition", "Condition"), "rank": 1}],
        "serviceProvider": c.org,
    }
    condition: Resource = {
        "resourceType": "Condition",
        "id": c.id("condition"),
        "clinicalStatus": _cc(cat.CONDITION_CLINICAL, "active", "Active"),
        "verificationStatus": _cc(cat.CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        "category": [_cc(cat.CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")],
        "code": dx.codeable(),
        "subject": c.subject,
        "encounter": c.ref("encounter", "Encounter"),
        "onsetDateTime": start,
        "recordedDate": start,
        "recorder": c.author,
    }
    sections = [
        ("Жалобы", complaints),
        ("Анамнез заболевания", anamnesis),
        ("Объективный осмотр", examination),
        ("Диагноз", f"{dx.code} {dx.display}"),
        ("Рекомендации", recommendations),
    ]
    composition: Resource = {
        "resourceType": "Composition",
        "id": c.id("protocol"),
        "status": "final",
        "type": {
            "coding": [
                {
                    "system": cat.DOCUMENT_KIND_SYSTEM,
                    "code": "consult",
                    "display": "Протокол консультации",
                },
                {"system": cat.LOINC_SYSTEM, "code": "11488-4", "display": "Consult note"},
            ],
            "text": "Протокол консультации",
        },
        "category": [
            _cc(
                cat.DOCUMENT_CATEGORY_SYSTEM,
                "clinical-note",
                cat.DOCUMENT_CATEGORIES["clinical-note"],
            )
        ],
        "subject": c.subject,
        "encounter": c.ref("encounter", "Encounter"),
        "date": start,
        "author": [c.author],
        "title": f"Протокол консультации: {kind_ru.lower()}",
        "custodian": c.org,
        "section": [
            {"title": title, "text": _div(*text.splitlines())}
            | ({"entry": [c.ref("condition", "Condition")]} if title == "Диагноз" else {})
            for title, text in sections
            if text
        ],
    }
    if not c.organization:
        encounter.pop("serviceProvider")
        composition.pop("custodian")
    return [encounter, condition, composition]


# -- diagnosis --------------------------------------------------------------------------

CLINICAL_STATUSES = {
    "active": "Active",
    "recurrence": "Recurrence",
    "remission": "Remission",
    "resolved": "Resolved",
}


def build_diagnosis(r: Reader, c: EntryContext) -> list[Resource]:
    dx = r.icd10("code")
    status = r.choice("clinical_status", CLINICAL_STATUSES)
    onset = r.day("onset", required=False)
    if onset is not None and onset > c.now.date():
        r.errs.add("onset", "ws_err_future_date")
    _after_birth(r, c, "onset", onset)
    note = r.text("note", limit=2000)
    r.errs.check()
    assert dx is not None
    res: Resource = {
        "resourceType": "Condition",
        "id": c.id("condition"),
        "clinicalStatus": _cc(cat.CONDITION_CLINICAL, status, CLINICAL_STATUSES[status]),
        "verificationStatus": _cc(cat.CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        "category": [_cc(cat.CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        "code": dx.codeable(),
        "subject": c.subject,
        "recordedDate": instant(c.now),
        "recorder": c.author,
    }
    if onset is not None:
        res["onsetDateTime"] = onset.isoformat()
    if status == "resolved":
        res["abatementDateTime"] = c.now.date().isoformat()
    if note:
        res["note"] = [{"text": note, "authorReference": c.author, "time": instant(c.now)}]
    return [res]


# -- allergy ----------------------------------------------------------------------------

ALLERGY_CATEGORIES = ("medication", "food", "environment", "biologic")
CRITICALITY = ("low", "high", "unable-to-assess")


def build_allergy(r: Reader, c: EntryContext) -> list[Resource]:
    substance = r.text("substance", required=True, limit=200)
    category = r.choice("category", dict.fromkeys(ALLERGY_CATEGORIES))
    criticality = r.choice("criticality", dict.fromkeys(CRITICALITY))
    reaction = r.text("reaction", required=True, limit=300)
    r.errs.check()
    code: Resource = {"text": substance}
    atc = CATALOGS["medication"].resolve(substance) if category == "medication" else None
    if atc is not None:
        code["coding"] = [atc.coding()]
    return [
        {
            "resourceType": "AllergyIntolerance",
            "id": c.id("allergy"),
            "clinicalStatus": _cc(cat.ALLERGY_CLINICAL, "active", "Active"),
            "verificationStatus": _cc(cat.ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
            "type": "allergy",
            "category": [category],
            "criticality": criticality,
            "code": code,
            "patient": c.subject,
            "recordedDate": instant(c.now),
            "recorder": c.author,
            "reaction": [
                {
                    "manifestation": [{"text": reaction}],
                    "severity": "severe" if criticality == "high" else "mild",
                }
            ],
        }
    ]


# -- organisations and referrals ------------------------------------------------------------


def organizations(repo: Repository, *kinds: str) -> list[tuple[str, str]]:
    """(id, name) of organisations of the given kinds, by name."""
    query = [("type", ",".join(f"{cat.ORG_KIND_SYSTEM}|{k}" for k in kinds)), ("_count", "500")]
    found = repo.search(parse("Organization", query)).matches
    return sorted(((s.id, str(s.json().get("name", s.id))) for s in found), key=lambda x: x[1])


def _performer(r: Reader, c: EntryContext, name: str, kinds: tuple[str, ...]) -> Resource | None:
    org_id = (r.form.get(name) or "").strip()
    if not org_id:
        r.errs.add(name, "ws_err_required")
        return None
    options = dict(organizations(c.repo, *kinds))
    if org_id not in options:
        r.errs.add(name, "ws_err_unknown_org")
        return None
    return {"reference": f"Organization/{org_id}", "display": options[org_id]}


def open_orders(repo: Repository, patient_id: str, category: str) -> list[Resource]:
    """Active referrals of one category in a card (results are entered against them)."""
    found = repo.search(
        parse(
            "ServiceRequest",
            [
                ("patient", f"Patient/{patient_id}"),
                ("category", f"{cat.SNOMED_SYSTEM}|{category}"),
                ("status", "active"),
                ("_count", "100"),
            ],
        )
    ).matches
    return [s.json() for s in found]


def _order(r: Reader, c: EntryContext, category: str) -> Resource | None:
    order_id = (r.form.get("order") or "").strip()
    if not order_id:
        return None
    try:
        order = c.repo.read("ServiceRequest", order_id).json()
    except FhirError:
        r.errs.add("order", "ws_err_unknown_order")
        return None
    cats = {x.get("code") for cc in order.get("category") or [] for x in cc.get("coding") or []}
    subject = (order.get("subject") or {}).get("reference")
    if subject != f"Patient/{c.patient_id}" or category not in cats:
        r.errs.add("order", "ws_err_unknown_order")
        return None
    if order.get("status") != "active":
        r.errs.add("order", "ws_err_order_closed")
        return None
    return order


def _referral(
    c: EntryContext,
    category: tuple[str, str],
    code: Resource,
    performer: Resource,
    priority: str,
    reason: Concept | None,
    note: str,
) -> Resource:
    res: Resource = {
        "resourceType": "ServiceRequest",
        "id": c.id("request"),
        "identifier": [{"system": cat.REFERRAL_NUMBER_SYSTEM, "value": f"Н-{c.id('request')[:8]}"}],
        "status": "active",
        "intent": "order",
        "category": [_cc(cat.SNOMED_SYSTEM, category[0], category[1])],
        "priority": priority,
        "code": code,
        "subject": c.subject,
        "authoredOn": instant(c.now),
        "requester": c.author,
        "performer": [performer],
    }
    if reason is not None:
        res["reasonCode"] = [reason.codeable()]
    if note:
        res["note"] = [{"text": note}]
    return res


PRIORITIES = ("routine", "urgent", "asap")


def build_lab_order(r: Reader, c: EntryContext) -> list[Resource]:
    panel_key = r.choice("panel", cat.LAB_PANELS)
    performer = _performer(r, c, "performer", ("lab",))
    priority = r.choice("priority", dict.fromkeys(PRIORITIES))
    reason = r.icd10("reason", required=False)
    note = r.text("note", limit=1000)
    r.errs.check()
    assert performer is not None
    system, code, ru, _ = cat.LAB_PANELS[panel_key]
    return [_referral(c, LAB_CATEGORY, _cc(system, code, ru), performer, priority, reason, note)]


REFERRAL_KINDS = {
    "consultation": REFERRAL_CATEGORY,
    "hospitalization": HOSPITAL_CATEGORY,
    "imaging": IMAGING_CATEGORY,
}


def build_referral(r: Reader, c: EntryContext) -> list[Resource]:
    kind = r.choice("referral_kind", REFERRAL_KINDS)
    service = r.concept("service", CATALOGS["service"])
    kinds = (
        ("hospital",)
        if kind == "hospitalization"
        else ("imaging",)
        if kind == "imaging"
        else ("polyclinic", "hospital")
    )
    performer = _performer(r, c, "performer", kinds)
    priority = r.choice("priority", dict.fromkeys(PRIORITIES))
    reason = r.icd10("reason")
    note = r.text("note", limit=1000)
    r.errs.check()
    assert service is not None
    assert performer is not None
    return [
        _referral(c, REFERRAL_KINDS[kind], service.codeable(), performer, priority, reason, note)
    ]


# -- lab results ----------------------------------------------------------------------------


def reference_range(key: str, gender: str, age: int) -> tuple[float, float]:
    test = cat.LAB_TESTS[key]
    return test.child if age < 18 else test.male if gender == "male" else test.female


def unit_fits(key: str, unit: str) -> bool:
    test = cat.LAB_TESTS[key]
    folded = unit.strip().replace(" ", "").casefold()
    accepted = {test.ucum.casefold(), test.unit.replace(" ", "").casefold()}
    accepted |= {test.unit.replace("⁹", "9").replace("¹²", "12").replace("×", "x").casefold()}
    return folded in accepted


def build_lab_result(r: Reader, c: EntryContext) -> list[Resource]:
    order = _order(r, c, LAB_CATEGORY[0])
    panel_key = r.choice("panel", cat.LAB_PANELS)
    collected = r.when("collected")
    _after_birth(r, c, "collected", collected)
    conclusion = r.text("conclusion", limit=2000)
    if order is not None and collected is not None:
        authored = dt.datetime.fromisoformat(order["authoredOn"])
        if collected < authored - dt.timedelta(minutes=1):
            r.errs.add("collected", "ws_err_result_before_order")
    values: list[tuple[str, float, str]] = []
    if panel_key:
        for key in cat.LAB_PANELS[panel_key][3]:
            test = cat.LAB_TESTS[key]
            value = r.number(f"value_{key}", required=False, high=100000)
            unit = (r.form.get(f"unit_{key}") or test.unit).strip()
            if value is None:
                continue
            if not unit_fits(key, unit):
                r.errs.add(
                    f"unit_{key}",
                    "ws_err_unit",
                    unit=unit[:20],
                    analyte=test.ru,
                    expected=test.unit,
                )
                continue
            values.append((key, value, unit))
        if not values and not any(p.field.startswith(("value_", "unit_")) for p in r.errs.problems):
            r.errs.add("panel", "ws_err_no_values")
    r.errs.check()
    assert collected is not None
    system, code, ru, _ = cat.LAB_PANELS[panel_key]
    age = c.age_on(collected.date())
    gender = str(c.patient.get("gender", ""))
    performer = c.org if c.organization else c.author
    basis = [{"reference": f"ServiceRequest/{order['id']}"}] if order else []
    observations = []
    for key, value, _unit in values:
        test = cat.LAB_TESTS[key]
        lo, hi = reference_range(key, gender, age)
        flag = ("L", "Low") if value < lo else ("H", "High") if value > hi else ("N", "Normal")
        rng: Resource = {
            "high": {"value": hi, "unit": test.unit, "system": cat.UCUM_SYSTEM, "code": test.ucum}
        }
        if lo > 0:
            rng["low"] = {
                "value": lo,
                "unit": test.unit,
                "system": cat.UCUM_SYSTEM,
                "code": test.ucum,
            }
        obs: Resource = {
            "resourceType": "Observation",
            "id": c.id(f"obs-{key}"),
            "status": "final",
            "category": [_cc(cat.OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
            "code": _cc(cat.LOINC_SYSTEM, test.loinc, test.ru),
            "subject": c.subject,
            "effectiveDateTime": instant(collected),
            "issued": instant(c.now),
            "performer": [performer],
            "valueQuantity": {
                "value": value,
                "unit": test.unit,
                "system": cat.UCUM_SYSTEM,
                "code": test.ucum,
            },
            "interpretation": [_cc(cat.V3_INTERPRETATION, flag[0], flag[1])],
            "referenceRange": [rng],
        }
        if basis:
            obs["basedOn"] = basis
        observations.append(obs)
    report: Resource = {
        "resourceType": "DiagnosticReport",
        "id": c.id("report"),
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": cat.V2_0074, "code": "LAB", "display": "Laboratory"},
                    {
                        "system": cat.OBSERVATION_CATEGORY,
                        "code": "laboratory",
                        "display": "Laboratory",
                    },
                ],
                "text": "Лабораторные исследования",
            }
        ],
        "code": _cc(system, code, ru),
        "subject": c.subject,
        "effectiveDateTime": instant(collected),
        "issued": instant(c.now),
        "performer": [performer],
        "resultsInterpreter": [c.author],
        "result": [{"reference": f"Observation/{o['id']}"} for o in observations],
    }
    if basis:
        report["basedOn"] = basis
    if conclusion:
        report["conclusion"] = conclusion
    return [report, *observations]


# -- imaging ----------------------------------------------------------------------------------

MODALITIES = {
    "CT": "Computed Tomography",
    "US": "Ultrasound",
    "MR": "Magnetic Resonance",
    "DX": "Digital Radiography",
}


def build_imaging(r: Reader, c: EntryContext) -> list[Resource]:
    order = _order(r, c, IMAGING_CATEGORY[0])
    service = r.concept("service", CATALOGS["imaging"])
    modality = r.choice("modality", MODALITIES)
    body_site = r.text("body_site", required=True, limit=200)
    when = r.when("date")
    _after_birth(r, c, "date", when)
    findings = r.text("findings", required=True)
    conclusion = r.text("conclusion", required=True, limit=2000)
    if service is not None and modality and service.extra.get("modality") != modality:
        r.errs.add("modality", "ws_err_modality", expected=service.extra.get("modality", ""))
    if (
        order is not None
        and when is not None
        and when < dt.datetime.fromisoformat(order["authoredOn"]) - dt.timedelta(minutes=1)
    ):
        r.errs.add("date", "ws_err_result_before_order")
    r.errs.check()
    assert service is not None
    assert when is not None
    coding = {"system": cat.DICOM_DCM_SYSTEM, "code": modality, "display": MODALITIES[modality]}
    basis = [{"reference": f"ServiceRequest/{order['id']}"}] if order else []
    study: Resource = {
        "resourceType": "ImagingStudy",
        "id": c.id("study"),
        "identifier": [
            {"system": cat.DICOM_UID_SYSTEM, "value": f"urn:oid:2.25.{uuid.uuid4().int}"}
        ],
        "status": "available",
        "modality": [coding],
        "subject": c.subject,
        "started": instant(when),
        "interpreter": [c.author],
        "numberOfSeries": 1,
        "procedureCode": [service.codeable()],
        "description": service.display,
        "series": [
            {
                "uid": f"2.25.{uuid.uuid4().int}",
                "number": 1,
                "modality": coding,
                "description": body_site,
            }
        ],
    }
    report: Resource = {
        "resourceType": "DiagnosticReport",
        "id": c.id("report"),
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": cat.V2_0074, "code": "RAD", "display": "Radiology"},
                    {"system": cat.OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"},
                ],
                "text": "Лучевая и инструментальная диагностика",
            }
        ],
        "code": service.codeable(),
        "subject": c.subject,
        "effectiveDateTime": instant(when),
        "issued": instant(c.now),
        "performer": [c.org if c.organization else c.author],
        "resultsInterpreter": [c.author],
        "imagingStudy": [c.ref("study", "ImagingStudy")],
        "conclusion": f"{findings}\n\nЗаключение: {conclusion}",
    }
    if basis:
        study["basedOn"] = basis
        report["basedOn"] = basis
    return [report, study]


# -- vaccination ---------------------------------------------------------------------------


def next_due(vaccine: str, dose: int, birth: dt.date | None, given: dt.date) -> dt.date | None:
    """The next dose of the same vaccine in the national calendar (приказ № 1122н)."""
    if birth is None:
        return None
    later = [(days, n) for key, days, n, _ in cat.NATIONAL_CALENDAR if key == vaccine and n > dose]
    if not later:
        return None
    days, _ = min(later)
    return max(birth + dt.timedelta(days=days), given + dt.timedelta(days=30))


def build_vaccination(r: Reader, c: EntryContext) -> list[Resource]:
    key = r.choice("vaccine", cat.VACCINES)
    when = r.when("date")
    _after_birth(r, c, "date", when)
    lot = r.text("lot", required=True, limit=40)
    dose = r.integer("dose_number", low=1, high=10)
    due = r.day("next_due", required=False)
    if due is not None and when is not None and due <= when.date():
        r.errs.add("next_due", "ws_err_due_before_given")
    r.errs.check()
    assert when is not None
    assert dose is not None
    vaccine = cat.VACCINES[key]
    calendar = any(k == key and n == dose for k, _, n, _ in cat.NATIONAL_CALENDAR)
    revacc = any(k == key and n == dose and rv for k, _, n, rv in cat.NATIONAL_CALENDAR)
    series = (
        "Национальный календарь профилактических прививок: "
        + ("ревакцинация" if revacc else "вакцинация")
        if calendar
        else "Вакцинация по эпидемическим показаниям"
    )
    immunization: Resource = {
        "resourceType": "Immunization",
        "id": c.id("immunization"),
        "status": "completed",
        "vaccineCode": {
            "coding": [
                {"system": cat.CVX_SYSTEM, "code": vaccine.cvx, "display": vaccine.ru},
                {"system": cat.VACCINE_SYSTEM, "code": vaccine.key, "display": vaccine.ru},
            ],
            "text": vaccine.ru,
        },
        "patient": c.subject,
        "occurrenceDateTime": instant(when),
        "recorded": c.now.date().isoformat(),
        "primarySource": True,
        "lotNumber": lot,
        "route": _cc(cat.V3_ROUTE, vaccine.route, cat.ROUTES[vaccine.route]),
        "doseQuantity": {
            "value": vaccine.dose_ml,
            "unit": "мл",
            "system": cat.UCUM_SYSTEM,
            "code": "mL",
        },
        "performer": [{"actor": c.author}],
        "protocolApplied": [
            {
                "series": series,
                "targetDisease": [{"text": vaccine.disease}],
                "doseNumberPositiveInt": dose,
            }
        ],
    }
    due = due or next_due(key, dose, c.birth, when.date())
    out = [immunization]
    if due is not None:
        out.append(
            {
                "resourceType": "ImmunizationRecommendation",
                "id": c.id("recommendation"),
                "patient": c.subject,
                "date": instant(c.now),
                "authority": c.org if c.organization else c.author,
                "recommendation": [
                    {
                        "vaccineCode": [immunization["vaccineCode"]],
                        "targetDisease": {"text": vaccine.disease},
                        "forecastStatus": _cc(
                            "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status",
                            "due",
                            "Due",
                        ),
                        "dateCriterion": [
                            {
                                "code": _cc(cat.LOINC_SYSTEM, "30980-7", "Date vaccine due"),
                                "value": instant(
                                    dt.datetime.combine(due, dt.time(9), tzinfo=when.tzinfo)
                                ),
                            }
                        ],
                        "doseNumberPositiveInt": dose + 1,
                        "supportingImmunization": [c.ref("immunization", "Immunization")],
                    }
                ],
            }
        )
    return out


# -- dispanserization / preventive examination -------------------------------------------

EXAM_KINDS = ("dispanserization", "prof-exam", "child-prof-exam")


def build_exam(r: Reader, c: EntryContext) -> list[Resource]:
    kind = r.choice("exam_kind", dict.fromkeys(EXAM_KINDS))
    stage = r.choice("stage", {"1": "I", "2": "II"}) if kind == "dispanserization" else ""
    when = r.when("date")
    _after_birth(r, c, "date", when)
    group = r.choice("health_group", cat.HEALTH_GROUPS)
    sbp = r.integer("sbp", required=False, low=50, high=300)
    dbp = r.integer("dbp", required=False, low=30, high=200)
    height = r.number("height", required=False, low=30, high=250)
    weight = r.number("weight", required=False, low=1, high=400)
    findings = r.text("findings", required=True)
    if (sbp is None) != (dbp is None):
        r.errs.add("dbp" if dbp is None else "sbp", "ws_err_bp_pair")
    if sbp is not None and dbp is not None and dbp >= sbp:
        r.errs.add("dbp", "ws_err_bp_order")
    # adults I–IIIб (404н), minors I–V (514н), by the age on the day of the examination
    if when is not None and group and group not in health_groups_for(c.age_on(when.date())):
        r.errs.add("health_group", "ws_err_health_group_age")
    r.errs.check()
    assert when is not None
    at = instant(when)
    enc_types = [_cc(cat.ENCOUNTER_KIND_SYSTEM, kind, cat.ENCOUNTER_KINDS[kind])]
    if stage:
        enc_types.append(_cc(STAGE_SYSTEM, stage, f"{'I' * int(stage)} этап диспансеризации"))
    encounter: Resource = {
        "resourceType": "Encounter",
        "id": c.id("encounter"),
        "status": "finished",
        "class": {"system": cat.V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": enc_types,
        "subject": c.subject,
        "participant": [{"individual": c.author}],
        "period": {"start": at, "end": instant(when + dt.timedelta(minutes=40))},
        "reasonCode": [
            ICD10.lookup("Z00.0" if c.age_on(when.date()) >= 18 else "Z00.1").codeable()
        ],
    }
    if c.organization:
        encounter["serviceProvider"] = c.org
    enc_ref = c.ref("encounter", "Encounter")

    def vital(name: str, key: str, value: float) -> Resource:
        loinc, ru, ucum, unit = cat.VITALS[key]
        return {
            "resourceType": "Observation",
            "id": c.id(name),
            "status": "final",
            "category": [_cc(cat.OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
            "code": _cc(cat.LOINC_SYSTEM, loinc, ru),
            "subject": c.subject,
            "encounter": enc_ref,
            "effectiveDateTime": at,
            "performer": [c.author],
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": cat.UCUM_SYSTEM,
                "code": ucum,
            },
        }

    out: list[Resource] = [encounter]
    if sbp is not None and dbp is not None:
        loinc, ru, _, _ = cat.VITALS["bp"]
        out.append(
            {
                "resourceType": "Observation",
                "id": c.id("bp"),
                "status": "final",
                "category": [_cc(cat.OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
                "code": _cc(cat.LOINC_SYSTEM, loinc, ru),
                "subject": c.subject,
                "encounter": enc_ref,
                "effectiveDateTime": at,
                "performer": [c.author],
                "component": [
                    {
                        "code": _cc(cat.LOINC_SYSTEM, cat.VITALS[k][0], cat.VITALS[k][1]),
                        "valueQuantity": {
                            "value": v,
                            "unit": "мм рт. ст.",
                            "system": cat.UCUM_SYSTEM,
                            "code": "mm[Hg]",
                        },
                    }
                    for k, v in (("sbp", sbp), ("dbp", dbp))
                ],
            }
        )
    if height is not None:
        out.append(vital("height", "height", round(height, 1)))
    if weight is not None:
        out.append(vital("weight", "weight", round(weight, 1)))
    if height is not None and weight is not None:
        out.append(vital("bmi", "bmi", round(weight / (height / 100) ** 2, 1)))
    out.append(
        {
            "resourceType": "Observation",
            "id": c.id("group"),
            "status": "final",
            "category": [_cc(cat.OBSERVATION_CATEGORY, "exam", "Exam")],
            "code": _cc(
                cat.OBSERVATION_KIND_SYSTEM, "health-group", cat.OBSERVATION_KINDS["health-group"]
            ),
            "subject": c.subject,
            "encounter": enc_ref,
            "effectiveDateTime": at,
            "performer": [c.author],
            "valueCodeableConcept": _cc(cat.HEALTH_GROUP_SYSTEM, group, cat.HEALTH_GROUPS[group]),
            "note": [{"text": findings}],
        }
    )
    return out


# -- certificates and medical reports --------------------------------------------------------


def build_certificate(r: Reader, c: EntryContext) -> list[Resource]:
    doc = r.concept("document_type", CATALOGS["document"])
    issued = r.day("issued")
    valid_to = r.day("valid_to", required=False)
    text = r.text("conclusion", required=True, limit=4000)
    if issued is not None and issued > c.now.date():
        r.errs.add("issued", "ws_err_future_date")
    _after_birth(r, c, "issued", issued)
    if doc is not None and issued is not None:
        days = int(doc.extra.get("days", "0"))
        if valid_to is None and days:
            valid_to = issued + dt.timedelta(days=days)
        if valid_to is not None and valid_to < issued:
            r.errs.add("valid_to", "ws_err_valid_before_issued")
        elif valid_to is not None and days and valid_to > issued + dt.timedelta(days=days):
            r.errs.add("valid_to", "ws_err_valid_too_long", days=str(days))
    r.errs.check()
    assert doc is not None
    assert issued is not None
    first: Resource = next(iter(c.patient.get("name") or []), {})
    name = " ".join([str(first.get("family", "")), *[str(g) for g in first.get("given") or []]])
    lines = [
        doc.display,
        f"Медицинская организация: {c.organization_name}",
        f"Пациент: {name}, дата рождения {c.patient.get('birthDate', '')}",
        f"Заключение: {text}",
        f"Врач: {c.practitioner_name}",
        f"Дата выдачи: {issued.strftime('%d.%m.%Y')}",
    ]
    if valid_to is not None:
        lines.append(f"Действительна до {valid_to.strftime('%d.%m.%Y')}")
    category = doc.extra.get("category", "certificate")
    res: Resource = {
        "resourceType": "DocumentReference",
        "id": c.id("document"),
        "status": "current",
        "docStatus": "final",
        "type": _cc(cat.DOCUMENT_KIND_SYSTEM, doc.code, doc.display),
        "category": [
            _cc(cat.DOCUMENT_CATEGORY_SYSTEM, category, cat.DOCUMENT_CATEGORIES[category])
        ],
        "subject": c.subject,
        "date": instant(c.now),
        "author": [c.author],
        "description": doc.display,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "language": "ru",
                    "data": base64.b64encode("\n".join(lines).encode()).decode(),
                    "title": doc.display,
                    "creation": instant(c.now),
                }
            }
        ],
        "context": {
            "period": {"start": issued.isoformat(), "end": (valid_to or issued).isoformat()}
        },
    }
    if c.organization:
        res["custodian"] = c.org
    return [res]


# -- prescriptions -------------------------------------------------------------------------------


def build_prescription(r: Reader, c: EntryContext) -> list[Resource]:
    med = r.concept("medication", CATALOGS["medication"])
    dose_text = r.text("dose", required=True, limit=300)
    per_day = r.integer("frequency", low=1, high=12)
    days = r.integer("duration", required=False, low=1, high=365)
    quantity = r.integer("quantity", low=1, high=1000)
    reason = r.icd10("reason")
    r.errs.check()
    assert med is not None
    assert per_day is not None
    assert quantity is not None
    route = med.extra.get("route", "PO")
    unit = med.extra.get("unit", "")
    repeat: Resource = {"frequency": per_day, "period": 1, "periodUnit": "d"}
    if days:
        repeat["boundsDuration"] = {
            "value": days,
            "unit": "сут",
            "system": cat.UCUM_SYSTEM,
            "code": "d",
        }
    today = c.now.date()
    return [
        {
            "resourceType": "MedicationRequest",
            "id": c.id("prescription"),
            "identifier": [
                {"system": cat.PRESCRIPTION_NUMBER_SYSTEM, "value": f"Р-{c.id('prescription')[:8]}"}
            ],
            "status": "active",
            "intent": "order",
            "category": [_cc(cat.MEDREQ_CATEGORY, "community", "Community")],
            "medicationCodeableConcept": med.codeable(),
            "subject": c.subject,
            "authoredOn": instant(c.now),
            "requester": c.author,
            "reasonCode": [reason.codeable()] if reason else [],
            "dosageInstruction": [
                {
                    "sequence": 1,
                    "text": dose_text,
                    "timing": {"repeat": repeat},
                    "route": _cc(cat.V3_ROUTE, route, cat.ROUTES.get(route, route)),
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": unit or "доза"}}],
                }
            ],
            "dispenseRequest": {
                # form 107-1/у is valid 60 days
                "validityPeriod": {
                    "start": today.isoformat(),
                    "end": (today + dt.timedelta(days=60)).isoformat(),
                },
                "quantity": {"value": quantity, "unit": unit or "доза"},
            },
        }
    ]


@dataclass(frozen=True)
class Kind:
    key: str
    build: Callable[[Reader, EntryContext], list[Resource]]


KINDS: dict[str, Kind] = {
    k.key: k
    for k in (
        Kind("visit", build_visit),
        Kind("diagnosis", build_diagnosis),
        Kind("allergy", build_allergy),
        Kind("prescription", build_prescription),
        Kind("lab_order", build_lab_order),
        Kind("lab_result", build_lab_result),
        Kind("imaging", build_imaging),
        Kind("vaccination", build_vaccination),
        Kind("exam", build_exam),
        Kind("referral", build_referral),
        Kind("certificate", build_certificate),
    )
}
