"""The parts of a medical card and which FHIR resources land in each.

A resource is placed by its standard codes first (FHIR/HL7 categories, LOINC document
types, DICOM modalities) and by medcard's own code systems second, so data that
arrives from other systems lands in the same section as our own.  Titles are kept
here in both languages so the portal and the clinician's workspace say the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

Resource = Mapping[str, Any]

MEDCARD: Final = "https://medcard.example/fhir/CodeSystem"


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    ru: str
    en: str
    resource_types: tuple[str, ...]

    def title(self, lang: str) -> str:
        return self.en if lang == "en" else self.ru


SECTIONS: Final[tuple[Section, ...]] = (
    Section("visits", "Приёмы", "Visits", ("Encounter", "Appointment")),
    Section("labs", "Анализы", "Lab results", ("DiagnosticReport", "Observation")),
    Section(
        "protocols",
        "Протоколы консультаций",
        "Consultation notes",
        ("Composition", "DocumentReference"),
    ),
    Section(
        "imaging", "Исследования: КТ, УЗИ, МРТ", "Imaging", ("DiagnosticReport", "ImagingStudy")
    ),
    Section("vaccinations", "Прививки", "Vaccinations", ("Immunization",)),
    Section(
        "exams",
        "Диспансеризация и профосмотры",
        "Check-ups and dispanserization",
        ("Encounter", "Observation"),
    ),
    Section("referrals", "Направления", "Referrals", ("ServiceRequest",)),
    Section(
        "documents", "Справки и заключения", "Certificates and reports", ("DocumentReference",)
    ),
    Section("prescriptions", "Рецепты", "Prescriptions", ("MedicationRequest",)),
    Section("diagnoses", "Диагнозы", "Diagnoses", ("Condition",)),
    Section("allergies", "Аллергии", "Allergies", ("AllergyIntolerance",)),
    Section("measurements", "Измерения", "Measurements", ("Observation",)),
)
SECTION_BY_KEY: Final[Mapping[str, Section]] = {s.key: s for s in SECTIONS}

# Every type a card is built from (the patient's compartment) and the shared resources
# its entries point to, whose names say where an entry came from.
CARD_TYPES: Final = tuple(sorted({t for s in SECTIONS for t in s.resource_types}))
SOURCE_TYPES: Final = ("Organization", "Practitioner", "PractitionerRole", "Location")

# Encounter types that are check-ups: medcard's own kinds and SNOMED CT equivalents
# (general health check, periodic examination of a healthy person, child health check).
EXAM_ENCOUNTER_CODES: Final = frozenset(
    {
        "dispanserization",
        "prof-exam",
        "child-prof-exam",
        "410620009",  # well child visit
        "86013001",  # periodic reevaluation of healthy individual
        "268565007",  # adult health examination
        "185349003",  # encounter for check up
    }
)
# v2-0074 diagnostic service sections.
LAB_SERVICES: Final = frozenset(
    {"LAB", "HM", "CH", "MB", "SP", "SR", "BG", "BLB", "CUS", "IMM", "MCB", "MYC", "PAR", "SE"}
    | {"TX", "VR", "URN", "HLA", "CP", "OSL"}
)
IMAGING_SERVICES: Final = frozenset(
    {"RAD", "CT", "RUS", "MR", "NMR", "NMS", "RX", "VUS", "OUS", "XRC", "CTH", "RT", "EC"}
)
# LOINC document types that are clinical notes (consultation, progress, discharge,
# history and physical, procedure note) rather than certificates.
NOTE_LOINC: Final = frozenset(
    {"11488-4", "18842-5", "11506-3", "34117-2", "28570-0", "34109-9", "11504-8", "57133-1"}
)


def codes(concepts: Iterable[Any] | Any) -> set[str]:
    """Every code in one CodeableConcept or a list of them."""
    if isinstance(concepts, dict):
        concepts = [concepts]
    out: set[str] = set()
    for concept in concepts or ():
        if isinstance(concept, dict):
            for coding in concept.get("coding") or ():
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    out.add(coding["code"])
    return out


def is_lab_report(resource: Resource) -> bool:
    cats = codes(resource.get("category"))
    if cats & IMAGING_SERVICES or "imaging" in cats:
        return False
    if cats & LAB_SERVICES or "laboratory" in cats:
        return True
    return not resource.get("imagingStudy")


def is_note(resource: Resource) -> bool:
    """A clinical note (protocol, discharge summary) as opposed to a certificate."""
    cats = codes(resource.get("category"))
    if "clinical-note" in cats:
        return True
    return bool(codes(resource.get("type")) & NOTE_LOINC)


def is_exam_encounter(resource: Resource) -> bool:
    return bool(codes(resource.get("type")) & EXAM_ENCOUNTER_CODES)


def section_of(resource: Resource) -> str:
    """The section a resource belongs to ("" for none: the patient, shared resources)."""
    rtype = resource.get("resourceType")
    if rtype == "Encounter":
        return "exams" if is_exam_encounter(resource) else "visits"
    if rtype == "Appointment":
        return "visits"
    if rtype == "DiagnosticReport":
        return "labs" if is_lab_report(resource) else "imaging"
    if rtype == "ImagingStudy":
        return "imaging"
    if rtype == "Observation":
        cats = codes(resource.get("category"))
        if "laboratory" in cats:
            return "labs"
        if "imaging" in cats:
            return "imaging"
        if "exam" in cats:
            return "exams"
        return "measurements"
    if rtype == "Composition":
        return "protocols"
    if rtype == "DocumentReference":
        return "protocols" if is_note(resource) else "documents"
    simple = {
        "Immunization": "vaccinations",
        "ServiceRequest": "referrals",
        "MedicationRequest": "prescriptions",
        "Condition": "diagnoses",
        "AllergyIntolerance": "allergies",
    }
    return simple.get(str(rtype), "")


# Extracts of the card (medcard.extracts) are DocumentReferences in the card too, but they
# are copies of it, not entries: they have their own page and never show as certificates.
EXTRACT_CATEGORY = ("https://medcard.example/fhir/CodeSystem/document-category", "extract")


def is_extract(resource: Resource) -> bool:
    if resource.get("resourceType") != "DocumentReference":
        return False
    return any(
        (c.get("system"), c.get("code")) == EXTRACT_CATEGORY
        for cat in resource.get("category") or []
        for c in cat.get("coding") or []
    )


def entered_in_error(resource: Resource) -> bool:
    """Entries withdrawn as wrong never show (R4: status or verificationStatus)."""
    if resource.get("status") == "entered-in-error":
        return True
    if resource.get("docStatus") == "entered-in-error":
        return True
    return "entered-in-error" in codes(resource.get("verificationStatus"))
