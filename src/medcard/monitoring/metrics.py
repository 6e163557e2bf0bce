"""What the diary measures: LOINC codes, UCUM units, plausible and target ranges.

Plausible ranges reject values no living person shows (systolic 20, 60 °C): such a
reading is a typing or device error, never stored.  Target ranges are the usual adult
ones unless the attending physician set personal ones (a FHIR Goal).  A reading is
*flagged* (shown to the patient, listed for the physician) when it lies beyond its
target by more than the metric's ``alert_margin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
DIARY_SYSTEM: Final = "https://medcard.example/fhir/CodeSystem/diary"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
BP_PANEL: Final = "85354-9"


@dataclass(frozen=True)
class Unit:
    code: str  # UCUM
    display: str
    factor: float = 1.0  # value in this unit x factor = value in the metric's unit
    offset: float = 0.0


@dataclass(frozen=True)
class Metric:
    key: str
    system: str
    code: str
    ru: str
    en: str
    unit: Unit
    plausible: tuple[float, float]
    target: tuple[float | None, float | None]
    alert_margin: float | None  # None: never flagged (steps, weight)
    other_units: tuple[Unit, ...] = ()
    integer: bool = False
    category: str = "vital-signs"
    decimals: int = 1

    def title(self, lang: str) -> str:
        return self.en if lang == "en" else self.ru

    def units(self) -> tuple[Unit, ...]:
        return (self.unit, *self.other_units)

    def unit_for(self, code: str) -> Unit | None:
        for unit in self.units():
            if code in (unit.code, unit.display):
                return unit
        return None


def _m(
    key: str,
    code: str,
    ru: str,
    en: str,
    unit: Unit,
    plausible: tuple[float, float],
    target: tuple[float | None, float | None],
    margin: float | None,
    **kw: object,
) -> Metric:
    return Metric(key, LOINC, code, ru, en, unit, plausible, target, margin, **kw)  # type: ignore[arg-type]


MMHG = Unit("mm[Hg]", "мм рт. ст.")
METRICS: Final[tuple[Metric, ...]] = (
    _m(
        "systolic",
        "8480-6",
        "Систолическое давление",
        "Systolic blood pressure",
        MMHG,
        (50, 300),
        (90, 139),
        40,
        integer=True,
        decimals=0,
    ),
    _m(
        "diastolic",
        "8462-4",
        "Диастолическое давление",
        "Diastolic blood pressure",
        MMHG,
        (30, 200),
        (60, 89),
        20,
        integer=True,
        decimals=0,
    ),
    _m(
        "pulse",
        "8867-4",
        "Пульс",
        "Heart rate",
        Unit("/min", "уд/мин"),
        (25, 250),
        (50, 100),
        30,
        other_units=(Unit("{beats}/min", "уд/мин"),),
        integer=True,
        decimals=0,
    ),
    _m(
        "glucose",
        "15074-8",
        "Глюкоза крови",
        "Blood glucose",
        Unit("mmol/L", "ммоль/л"),
        (1.0, 35.0),
        (3.9, 7.8),
        3.0,
        other_units=(Unit("mg/dL", "мг/дл", 1 / 18.016),),
    ),
    _m(
        "weight",
        "29463-7",
        "Вес",
        "Body weight",
        Unit("kg", "кг"),
        (2, 400),
        (None, None),
        None,
        other_units=(Unit("[lb_av]", "фунт", 0.45359237),),
    ),
    _m(
        "bmi",
        "39156-5",
        "Индекс массы тела",
        "Body mass index",
        Unit("kg/m2", "кг/м²"),
        (8, 100),
        (18.5, 24.9),
        10,
    ),
    _m(
        "temperature",
        "8310-5",
        "Температура тела",
        "Body temperature",
        Unit("Cel", "°C"),
        (30, 45),
        (35.9, 37.2),
        1.7,
        other_units=(Unit("[degF]", "°F", 5 / 9, -32 * 5 / 9),),
    ),
    _m(
        "spo2",
        "59408-5",
        "Сатурация (SpO₂)",
        "Oxygen saturation (SpO₂)",
        Unit("%", "%"),
        (50, 100),
        (95, 100),
        3,
        integer=True,
        decimals=0,
    ),
    _m(
        "steps",
        "55423-8",
        "Шаги",
        "Steps",
        Unit("{steps}", "шагов"),
        (0, 150_000),
        (None, None),
        None,
        integer=True,
        category="activity",
        decimals=0,
    ),
    _m(
        "sleep",
        "93832-4",
        "Сон",
        "Sleep duration",
        Unit("h", "ч"),
        (0, 24),
        (7, 9),
        None,
        other_units=(Unit("min", "мин", 1 / 60),),
        category="activity",
    ),
    _m(
        "height",
        "8302-2",
        "Рост",
        "Body height",
        Unit("cm", "см"),
        (40, 250),
        (None, None),
        None,
        decimals=0,
    ),
    Metric(
        "wellbeing",
        DIARY_SYSTEM,
        "wellbeing",
        "Самочувствие (1–10)",
        "Well-being (1–10)",
        Unit("{score}", "балл"),
        (1, 10),
        (5, None),
        3,
        integer=True,
        category="survey",
        decimals=0,
    ),
)
METRIC: Final = {m.key: m for m in METRICS}
BY_CODE: Final = {(m.system, m.code): m for m in METRICS}
# 2339-0 is glucose by mass (mg/dL); readings arriving in it are the same measure.
BY_CODE[(LOINC, "2339-0")] = METRIC["glucose"]

# Charts: blood pressure is one picture with two lines.
CHARTS: Final = (
    "bp",
    "pulse",
    "glucose",
    "weight",
    "bmi",
    "temperature",
    "spo2",
    "steps",
    "sleep",
    "wellbeing",
)
