"""How each entry form looks: fields, widgets and choices (the builders validate)."""

from __future__ import annotations

from dataclasses import dataclass

from medcard.entries import (
    ALLERGY_CATEGORIES,
    CLINICAL_STATUSES,
    CRITICALITY,
    EXAM_KINDS,
    MODALITIES,
    PRIORITIES,
    REFERRAL_KINDS,
    VISIT_KINDS,
)
from medcard.terminology import CATALOGS
from medcard.terminology import reference as cat


@dataclass(frozen=True)
class Field:
    name: str
    widget: str  # text, textarea, datetime, date, select, code, number, orgs, orders, panel
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()  # (value, text key or literal label)
    lookup: str = ""  # type-ahead catalogue for "code"
    literal: bool = False  # option labels are not text keys
    org_kinds: tuple[str, ...] = ()
    order_category: str = ""


def _keys(prefix: str, values: object) -> tuple[tuple[str, str], ...]:
    return tuple((str(v), f"{prefix}{v}") for v in values)  # type: ignore[attr-defined]


def _catalog(name: str) -> tuple[tuple[str, str], ...]:
    return tuple((c.code, c.display) for c in CATALOGS[name].concepts)


PANELS = tuple((k, v[2]) for k, v in cat.LAB_PANELS.items())
VACCINES = tuple((k, v.ru) for k, v in cat.VACCINES.items())
GROUPS = tuple(cat.HEALTH_GROUPS.items())

FORMS: dict[str, tuple[Field, ...]] = {
    "visit": (
        Field("date", "datetime", True),
        Field("visit_kind", "select", True, _keys("ws_visit_kind_", VISIT_KINDS)),
        Field("complaints", "textarea", True),
        Field("anamnesis", "textarea"),
        Field("examination", "textarea", True),
        Field("diagnosis", "code", True, lookup="icd10"),
        Field("recommendations", "textarea"),
    ),
    "diagnosis": (
        Field("code", "code", True, lookup="icd10"),
        Field("clinical_status", "select", True, _keys("ws_status_", CLINICAL_STATUSES)),
        Field("onset", "date"),
        Field("note", "textarea"),
    ),
    "allergy": (
        Field("substance", "code", True, lookup="medication"),
        Field("category", "select", True, _keys("ws_allergy_cat_", ALLERGY_CATEGORIES)),
        Field("criticality", "select", True, _keys("ws_criticality_", CRITICALITY)),
        Field("reaction", "text", True),
    ),
    "prescription": (
        Field("medication", "code", True, lookup="medication"),
        Field("dose", "text", True),
        Field("frequency", "number", True),
        Field("duration", "number"),
        Field("quantity", "number", True),
        Field("reason", "code", True, lookup="icd10"),
    ),
    "lab_order": (
        Field("panel", "select", True, PANELS, literal=True),
        Field("performer", "orgs", True, org_kinds=("lab",)),
        Field("priority", "select", True, _keys("ws_priority_", PRIORITIES)),
        Field("reason", "code", False, lookup="icd10"),
        Field("note", "textarea"),
    ),
    "lab_result": (
        Field("order", "orders", False, order_category="108252007"),
        Field("panel", "panel", True, PANELS, literal=True),
        Field("collected", "datetime", True),
        Field("conclusion", "textarea"),
    ),
    "imaging": (
        Field("order", "orders", False, order_category="363679005"),
        Field("service", "select", True, _catalog("imaging"), literal=True),
        Field(
            "modality",
            "select",
            True,
            tuple((k, f"{k} — {v}") for k, v in MODALITIES.items()),
            literal=True,
        ),
        Field("body_site", "text", True),
        Field("date", "datetime", True),
        Field("findings", "textarea", True),
        Field("conclusion", "textarea", True),
    ),
    "vaccination": (
        Field("vaccine", "select", True, VACCINES, literal=True),
        Field("date", "datetime", True),
        Field("lot", "text", True),
        Field("dose_number", "number", True),
        Field("next_due", "date"),
    ),
    "exam": (
        Field(
            "exam_kind",
            "select",
            True,
            tuple((k, cat.ENCOUNTER_KINDS[k]) for k in EXAM_KINDS),
            literal=True,
        ),
        Field("stage", "select", False, (("1", "I"), ("2", "II")), literal=True),
        Field("date", "datetime", True),
        Field("sbp", "number"),
        Field("dbp", "number"),
        Field("height", "number"),
        Field("weight", "number"),
        Field("health_group", "select", True, GROUPS, literal=True),
        Field("findings", "textarea", True),
    ),
    "referral": (
        Field("referral_kind", "select", True, _keys("ws_referral_kind_", REFERRAL_KINDS)),
        Field("service", "code", True, lookup="service"),
        Field("performer", "orgs", True, org_kinds=("polyclinic", "hospital", "imaging")),
        Field("priority", "select", True, _keys("ws_priority_", PRIORITIES)),
        Field("reason", "code", True, lookup="icd10"),
        Field("note", "textarea"),
    ),
    "certificate": (
        Field("document_type", "select", True, _catalog("document"), literal=True),
        Field("issued", "date", True),
        Field("valid_to", "date"),
        Field("conclusion", "textarea", True),
    ),
}
