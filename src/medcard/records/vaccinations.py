"""Vaccinations against the national calendar (приказ Минздрава России № 1122н).

Each calendar dose is matched to a recorded Immunization by vaccine (medcard's vaccine
code or its CVX code) and dose number, and is then done, due (its age has come, within
a month), overdue, planned (not yet due) or "no data": due before the card's first
record, when a missing entry says nothing (paper-era vaccinations were not digitised).
Adults also get the ADS-M booster every ten years.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from medcard.records.card import Card, Entry
from medcard.terminology.reference import CVX_SYSTEM, NATIONAL_CALENDAR, VACCINE_SYSTEM, VACCINES

DUE_WINDOW_DAYS: Final = 30
BOOSTER_YEARS: Final = 10
FIRST_BOOSTER_AGE: Final = 24  # years: ADS-M every ten years after the one at 14
_CVX_TO_KEY: Final = {v.cvx: k for k, v in VACCINES.items()}

DONE, DUE, OVERDUE, PLANNED, NO_DATA = "done", "due", "overdue", "planned", "no-data"
STATUS_TEXT: Final = {
    DONE: ("сделана", "done"),
    DUE: ("пора сделать", "due"),
    OVERDUE: ("просрочена", "overdue"),
    PLANNED: ("запланирована", "planned"),
    NO_DATA: ("нет сведений", "no data"),
}


@dataclass(frozen=True, slots=True)
class CalendarDose:
    vaccine: str  # key in the catalogue
    vaccine_name: str
    disease: str
    dose: int
    revaccination: bool
    due_on: dt.date
    status: str
    entry: Entry | None

    def status_text(self, lang: str) -> str:
        ru, en = STATUS_TEXT[self.status]
        return en if lang == "en" else ru


def vaccine_key(entry: Entry) -> str:
    for coding in (entry.resource.get("vaccineCode") or {}).get("coding") or []:
        if coding.get("system") == VACCINE_SYSTEM and coding.get("code") in VACCINES:
            return str(coding["code"])
    for coding in (entry.resource.get("vaccineCode") or {}).get("coding") or []:
        if coding.get("system") == CVX_SYSTEM and coding.get("code") in _CVX_TO_KEY:
            return _CVX_TO_KEY[str(coding["code"])]
    return ""


def _dose(entry: Entry) -> int:
    for p in entry.resource.get("protocolApplied") or []:
        n = p.get("doseNumberPositiveInt")
        if isinstance(n, int):
            return n
    return 0


def calendar(card: Card, today: dt.date | None = None) -> list[CalendarDose]:
    """The calendar doses for this patient with their status, in the order they fall due."""
    today = today or card.today
    try:
        birth = dt.date.fromisoformat(card.birth_date[:10])
    except ValueError:
        return []
    given = [e for e in card.section("vaccinations") if e.status in ("completed", "")]
    by_vaccine: dict[str, list[Entry]] = {}
    for e in given:
        key = vaccine_key(e)
        if key:
            by_vaccine.setdefault(key, []).append(e)
    dated = [e.day for e in card.listed() if e.day]
    records_since = dt.date.fromisoformat(min(dated)) if dated else today
    used: set[str] = set()
    out: list[CalendarDose] = []

    def match(key: str, dose: int) -> Entry | None:
        doses = sorted(by_vaccine.get(key, []), key=lambda e: e.date)
        exact = next((e for e in doses if _dose(e) == dose and e.ref not in used), None)
        # a record without a dose number counts for the earliest open dose of its vaccine
        return exact or next((e for e in doses if _dose(e) == 0 and e.ref not in used), None)

    def add(key: str, dose: int, revacc: bool, due: dt.date) -> None:
        entry = match(key, dose)
        if entry is not None:
            used.add(entry.ref)
            status = DONE
        elif due > today:
            status = PLANNED
        elif due < records_since:
            status = NO_DATA
        elif (today - due).days <= DUE_WINDOW_DAYS:
            status = DUE
        else:
            status = OVERDUE
        spec = VACCINES[key]
        out.append(CalendarDose(key, spec.ru, spec.disease, dose, revacc, due, status, entry))

    for key, age_days, dose, revacc in NATIONAL_CALENDAR:
        add(key, dose, revacc, birth + dt.timedelta(days=age_days))
    # ADS-M boosters continue the diphtheria/tetanus series every ten years.
    age, dose = FIRST_BOOSTER_AGE, 7
    horizon = today + dt.timedelta(days=366)
    while True:
        try:
            due = birth.replace(year=birth.year + age)
        except ValueError:  # born on 29 February
            due = birth.replace(year=birth.year + age, day=28)
        if due > horizon:
            break
        add("adsm", dose, True, due)
        age += BOOSTER_YEARS
        dose += 1
    out.sort(key=lambda d: d.due_on)
    return out


def attention(doses: list[CalendarDose]) -> list[CalendarDose]:
    """Doses to act on now: due and overdue."""
    return [d for d in doses if d.status in (DUE, OVERDUE)]
