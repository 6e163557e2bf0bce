"""The service codes medcard bills: the Номенклатура медицинских услуг and a local case list.

The nomenclature (Приказ Минздрава России № 804н, ЕГИСЗ НСИ OID 1.2.643.5.1.13.13.11.1070)
is not published as a Python package, so the ~80 codes the demo and the workspace produce
ship in ``data/nomenclature.csv`` with their official titles and a base tariff.  OMS pays
preventive examinations and inpatient stays per completed case, which has no single
nomenclature code; those live in medcard's own, clearly named, code system (``CASE_SYSTEM``).
A code in neither list is unknown and is never billed (the line is flagged instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Final

from medcard.terminology import reference as cat

NMU_SYSTEM: Final = cat.NMU_SYSTEM  # urn:oid:1.2.643.5.1.13.13.11.1070
CASE_SYSTEM: Final = f"{cat.MEDCARD_FHIR_BASE}/CodeSystem/oms-case"
SYSTEMS: Final = {"nmu": NMU_SYSTEM, "case": CASE_SYSTEM}


@dataclass(frozen=True)
class Service:
    system: str
    code: str
    title: str
    base_tariff: Decimal  # RUB, before the region's price list

    @property
    def local(self) -> bool:
        return self.system == CASE_SYSTEM

    def codeable(self) -> dict[str, object]:
        return {
            "coding": [{"system": self.system, "code": self.code, "display": self.title}],
            "text": self.title,
        }


@cache
def services() -> dict[str, Service]:
    """Code -> Service, in file order (the codes of both lists are disjoint)."""
    text = resources.files("medcard.billing").joinpath("data/nomenclature.csv").read_text("utf-8")
    out: dict[str, Service] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, code, title, tariff = line.split(";")
        out[code] = Service(SYSTEMS[kind], code, title, Decimal(tariff))
    return out


def get(code: str) -> Service | None:
    return services().get(code.strip())


def from_concept(concept: object) -> Service | None:
    """The billable service a CodeableConcept names (a nomenclature or local case code)."""
    if not isinstance(concept, dict):
        return None
    for c in concept.get("coding") or []:
        if isinstance(c, dict) and c.get("system") in (NMU_SYSTEM, CASE_SYSTEM):
            found = get(str(c.get("code", "")))
            if found is not None and found.system == c.get("system"):
                return found
    return None


# Lab panels billed as one complex service; other panels are billed per analyte.
PANEL_SERVICES: Final = {
    "58410-2": "B03.016.003",  # общий (клинический) анализ крови развернутый
    "4548-4": "A09.05.083",  # гликированный гемоглобин
    "24356-8": "B03.016.006",  # общий анализ мочи
}
# Analytes (LOINC) -> nomenclature code, for panels billed per test.
ANALYTE_SERVICES: Final = {
    cat.LAB_TESTS["hgb"].loinc: "A09.05.003",
    cat.LAB_TESTS["wbc"].loinc: "A08.05.004",
    cat.LAB_TESTS["rbc"].loinc: "A08.05.003",
    cat.LAB_TESTS["plt"].loinc: "A08.05.005",
    cat.LAB_TESTS["esr"].loinc: "A12.05.001",
    cat.LAB_TESTS["glucose"].loinc: "A09.05.023",
    cat.LAB_TESTS["chol"].loinc: "A09.05.026",
    cat.LAB_TESTS["creat"].loinc: "A09.05.020",
    cat.LAB_TESTS["alt"].loinc: "A09.05.042",
    cat.LAB_TESTS["ast"].loinc: "A09.05.041",
    cat.LAB_TESTS["hba1c"].loinc: "A09.05.083",
}
# Preventive examinations (encounter kind -> case code); stage II of dispanserization
# is told by the workspace's stage coding.
EXAM_CASES: Final = {
    "dispanserization": "disp-1",
    "prof-exam": "prof-adult",
    "child-prof-exam": "prof-child",
}
VACCINATION: Final = "B04.014.004"
HOSPITAL_CASE: Final = "hosp"
