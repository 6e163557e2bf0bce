"""Import a home monitor's CSV export, reporting row by row.

Monitors export one row per measurement session: a date and time and one or more
values (blood-pressure monitors: systolic, diastolic, pulse; glucometers: glucose;
scales: weight).  Headers are matched by name in Russian or English, with the unit in
parentheses where the export gives one ("Glucose (mg/dL)").  A file without a date
column or without any known measurement column is not such an export and is refused
as a whole; otherwise every row is reported: saved, already stored (a repeated
upload), or refused with its reason.  A refused row does not stop the others.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository
from medcard.monitoring.diary import CREATED, save_readings, with_bmi
from medcard.monitoring.readings import Reading, ReadingError, checked

MAX_BYTES: Final = 2 * 1024 * 1024
MAX_ROWS: Final = 5000

_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "datetime": ("datetime", "date time", "date/time", "timestamp", "дата и время", "measured at"),
    "date": ("date", "дата", "day"),
    "time": ("time", "время"),
    "systolic": ("systolic", "sys", "сад", "систолическое", "верхнее", "systolic pressure"),
    "diastolic": ("diastolic", "dia", "дад", "диастолическое", "нижнее", "diastolic pressure"),
    "pulse": ("pulse", "pulse rate", "heart rate", "hr", "пульс", "bpm", "чсс"),
    "glucose": ("glucose", "blood glucose", "глюкоза", "сахар", "sugar"),
    "weight": ("weight", "вес", "масса"),
    "height": ("height", "рост"),
    "temperature": ("temperature", "temp", "температура"),
    "spo2": ("spo2", "sp02", "сатурация", "oxygen saturation", "saturation"),
    "steps": ("steps", "шаги", "шагов"),
    "sleep": ("sleep", "сон", "sleep duration"),
    "wellbeing": ("wellbeing", "well-being", "самочувствие", "score"),
    "device": ("device", "устройство", "serial", "device id"),
    "note": ("note", "notes", "comment", "comments", "примечание", "комментарий"),
}
_COLUMN: Final = {alias: key for key, names in _ALIASES.items() for alias in names}
_UNITS: Final = {
    "mmhg": "mm[Hg]",
    "мм рт. ст.": "mm[Hg]",
    "мм рт.ст.": "mm[Hg]",
    "bpm": "/min",
    "уд/мин": "/min",
    "/min": "/min",
    "mg/dl": "mg/dL",
    "мг/дл": "mg/dL",
    "mmol/l": "mmol/L",
    "ммоль/л": "mmol/L",
    "kg": "kg",
    "кг": "kg",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "cm": "cm",
    "см": "cm",
    "°c": "Cel",
    "c": "Cel",
    "°с": "Cel",
    "°f": "[degF]",
    "f": "[degF]",
    "%": "%",
    "h": "h",
    "ч": "h",
    "hours": "h",
    "min": "min",
    "мин": "min",
}
MEASURES: Final = (
    "systolic",
    "diastolic",
    "pulse",
    "glucose",
    "weight",
    "height",
    "temperature",
    "spo2",
    "steps",
    "sleep",
    "wellbeing",
)
_DATE_FORMATS: Final = ("%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d", "%d.%m.%y")
_TIME_FORMATS: Final = ("%H:%M", "%H:%M:%S")


class CsvFormatError(ValueError):
    """The file is not a monitor export at all; ``key`` names the page text."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass
class RowReport:
    line: int  # line number in the file (the header is line 1)
    status: str  # "created" | "duplicate" | "error"
    readings: int = 0
    errors: list[ReadingError] = field(default_factory=list)


@dataclass
class ImportReport:
    rows: list[RowReport]

    @property
    def created(self) -> int:
        return sum(r.readings for r in self.rows if r.status == "created")

    @property
    def duplicates(self) -> int:
        return sum(1 for r in self.rows if r.status == "duplicate")

    @property
    def refused(self) -> int:
        return sum(1 for r in self.rows if r.status == "error")


@dataclass(frozen=True)
class Column:
    index: int
    key: str
    unit: str


def _header(name: str) -> tuple[str, str]:
    """("systolic", "mm[Hg]") from "Systolic (mmHg)"; unknown names give ("", "")."""
    text = name.strip().lstrip("\ufeff").lower()
    unit = ""
    m = re.fullmatch(r"(.*?)\s*[\(\[]([^\)\]]*)[\)\]]\s*", text)
    if m:
        text, unit_text = m.group(1).strip(), m.group(2).strip()
        unit = _UNITS.get(unit_text, unit_text)
    text = re.sub(r"[\s_]+", " ", text)
    return _COLUMN.get(text, ""), unit


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvFormatError("csv_encoding", "the file is neither UTF-8 nor Windows-1251 text")


def _columns(header: list[str]) -> list[Column]:
    cols = []
    for i, name in enumerate(header):
        key, unit = _header(name)
        if key:
            cols.append(Column(i, key, unit))
    keys = {c.key for c in cols}
    if "datetime" not in keys and "date" not in keys:
        raise CsvFormatError(
            "csv_no_date", "no date column (expected 'date' and 'time', or 'datetime')"
        )
    if not keys & set(MEASURES):
        raise CsvFormatError(
            "csv_no_measures",
            "no measurement column (expected e.g. systolic, diastolic, pulse, glucose, weight)",
        )
    return cols


def _strptime_any(text: str, zone: ZoneInfo) -> datetime | None:
    date_part, _, time_part = text.partition(" ")
    for dfmt in _DATE_FORMATS:
        for tfmt in _TIME_FORMATS if time_part else ("",):
            try:
                return datetime.strptime(
                    f"{date_part} {time_part}".strip(), f"{dfmt} {tfmt}".strip()
                ).replace(tzinfo=zone)
            except ValueError:
                continue
    return None


def _parse_when(date_text: str, time_text: str, zone: ZoneInfo) -> datetime:
    text = date_text.strip()
    if time_text.strip():
        text = f"{text} {time_text.strip()}"
    iso = text.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", text) else text
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        found = _strptime_any(text, zone)
        if found is None:
            raise ReadingError("reading_bad_time", f"cannot read the date '{text}'") from None
        return found
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def _number(text: str, key: str) -> float:
    try:
        return float(text.strip().replace(",", ".").replace("\u00a0", "").replace(" ", ""))
    except ValueError:
        raise ReadingError(
            "reading_not_number", f"{key}: '{text.strip()}' is not a number"
        ) from None


def _row_readings(
    cells: dict[str, tuple[str, str]], zone: ZoneInfo, default_device: str
) -> list[Reading]:
    date_text = cells.get("datetime", cells.get("date", ("", "")))[0]
    if not date_text.strip():
        raise ReadingError("reading_bad_time", "no date")
    when = _parse_when(
        date_text, cells.get("time", ("", ""))[0] if "datetime" not in cells else "", zone
    )
    device = (cells.get("device", ("", ""))[0].strip() or default_device)[:200]
    note = cells.get("note", ("", ""))[0].strip()
    values = {k: v for k, v in cells.items() if k in MEASURES and v[0].strip()}
    if not values:
        raise ReadingError("reading_no_value", "no values in this row")
    readings = []
    if "systolic" in values or "diastolic" in values:
        if "systolic" not in values or "diastolic" not in values:
            raise ReadingError(
                "reading_bp_half", "blood pressure needs both systolic and diastolic"
            )
        (s, unit), (d, _) = values.pop("systolic"), values.pop("diastolic")
        readings.append(
            Reading("bp", when, _number(s, "systolic"), _number(d, "diastolic"), unit, device, note)
        )
        note = ""
    for key, (text, unit) in values.items():
        readings.append(Reading(key, when, _number(text, key), 0.0, unit, device, note))
        note = ""
    return readings


def import_csv(
    repo: Repository,
    patient_id: str,
    data: bytes,
    *,
    zone: ZoneInfo,
    device: str = "csv",
    height_cm: float | None = None,
) -> ImportReport:
    if len(data) > MAX_BYTES:
        raise CsvFormatError("csv_too_big", f"the file is larger than {MAX_BYTES // 1024} KiB")
    text = _decode(data)
    if not text.strip():
        raise CsvFormatError("csv_empty", "the file is empty")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text.splitlines()[0], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    cols = _columns(rows[0])
    body = rows[1:]
    if len(body) > MAX_ROWS:
        raise CsvFormatError("csv_too_many_rows", f"more than {MAX_ROWS} rows")
    reports = []
    for n, row in enumerate(body, start=2):
        if not any(cell.strip() for cell in row):
            continue
        report = RowReport(n, "error")
        reports.append(report)
        try:
            cells = {c.key: (row[c.index] if c.index < len(row) else "", c.unit) for c in cols}
            readings = [checked(r) for r in _row_readings(cells, zone, device)]
            heights = [r.value for r in readings if r.metric == "height"]
            readings = with_bmi(readings, heights[0] if heights else height_cm)
            statuses = save_readings(repo, patient_id, readings)
        except ReadingError as exc:
            report.errors.append(exc)
            continue
        except FhirError as exc:
            report.errors.append(ReadingError("reading_refused", exc.diagnostics))
            continue
        report.readings = statuses.count(CREATED)
        report.status = "created" if report.readings else "duplicate"
    return ImportReport(reports)
