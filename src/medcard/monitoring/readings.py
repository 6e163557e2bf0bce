"""Diary readings: checked, turned into FHIR Observations, and read back.

A reading becomes a patient-reported Observation (R4 vital-signs profile shape):
category, LOINC code, ``subject``, ``effectiveDateTime``, ``valueQuantity`` in UCUM
(blood pressure: the 85354-9 panel with systolic and diastolic components), the
device it came from, and an identifier derived from patient + device + time + code,
so a retried upload finds the reading it already stored (conditional create on it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from medcard import clock
from medcard.monitoring.metrics import (
    BP_PANEL,
    BY_CODE,
    LOINC,
    METRIC,
    OBSERVATION_CATEGORY,
    UCUM,
    Metric,
)

READING_ID_SYSTEM = "https://medcard.example/fhir/sid/diary-reading"
DEVICE_EXTENSION = "https://medcard.example/fhir/StructureDefinition/diary-device"
FUTURE_SKEW = timedelta(minutes=5)  # clocks of phones and monitors drift a little
OLDEST = timedelta(days=366 * 5)  # a home-monitor export older than that is a wrong date


class ReadingError(ValueError):
    """A reading refused; ``key`` names the page text, ``message`` the English reason."""

    def __init__(self, key: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.key = key
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Reading:
    metric: str  # key in METRICS, or "bp"
    when: datetime  # aware
    value: float = 0.0
    diastolic: float = 0.0  # "bp" only (value is systolic)
    unit: str = ""  # UCUM code or display; "" = the metric's own unit
    device: str = "manual"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _convert(metric: Metric, value: float, unit: str) -> float:
    if not unit:
        return value
    found = metric.unit_for(unit)
    if found is None:
        allowed = ", ".join(u.code for u in metric.units())
        raise ReadingError(
            "reading_bad_unit",
            f"{metric.en}: unit '{unit}' is not accepted (use {allowed})",
            metric=metric.key,
            unit=unit,
        )
    return value * found.factor + found.offset


def check_value(metric: Metric, value: float, unit: str = "") -> float:
    """The value in the metric's own unit, if it is physiologically possible."""
    if math.isnan(value) or math.isinf(value):
        raise ReadingError(
            "reading_not_number", f"{metric.en}: not a number", metric=metric.key, value=""
        )
    converted = _convert(metric, value, unit)
    low, high = metric.plausible
    if not low <= converted <= high:
        raise ReadingError(
            "reading_implausible",
            f"{metric.en} {value:g} {unit or metric.unit.code} is not physiologically possible "
            f"(expected {low:g}-{high:g} {metric.unit.code})",
            metric=metric.key,
            value=f"{value:g}",
            low=f"{low:g}",
            high=f"{high:g}",
            unit=metric.unit.display,
        )
    if metric.integer:
        converted = round(converted)
    return round(converted, 2)


def check_time(when: datetime, now: datetime | None = None) -> datetime:
    if when.tzinfo is None:
        raise ReadingError("reading_bad_time", "the time of a reading needs a time zone")
    now = now or clock.now()
    if when > now + FUTURE_SKEW:
        raise ReadingError(
            "reading_future", f"the time {when.isoformat()} is in the future", when=when
        )
    if when < now - OLDEST:
        raise ReadingError("reading_too_old", f"the time {when.isoformat()} is too far back")
    return when


def checked(reading: Reading) -> Reading:
    """The reading with values converted to the metric's unit; ReadingError if refused."""
    check_time(reading.when)
    if reading.metric == "bp":
        sys_v = check_value(METRIC["systolic"], reading.value, reading.unit)
        dia_v = check_value(METRIC["diastolic"], reading.diastolic, reading.unit)
        if dia_v >= sys_v:
            raise ReadingError(
                "reading_bp_order",
                f"diastolic {dia_v:g} must be lower than systolic {sys_v:g}",
            )
        return Reading("bp", reading.when, sys_v, dia_v, "", reading.device, reading.note)
    metric = METRIC.get(reading.metric)
    if metric is None:
        raise ReadingError("reading_unknown", f"unknown measurement '{reading.metric}'")
    value = check_value(metric, reading.value, reading.unit)
    return Reading(metric.key, reading.when, value, 0.0, "", reading.device, reading.note)


def reading_identifier(patient_id: str, device: str, when: datetime, code: str) -> str:
    """Stable for the same patient, device, minute-precise time and code: retries match."""
    instant = when.astimezone(UTC).replace(second=0, microsecond=0).isoformat()
    raw = f"{patient_id}|{device.strip().lower()}|{instant}|{code}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def _quantity(value: float, metric: Metric) -> dict[str, Any]:
    return {
        "value": int(value) if metric.integer else value,
        "unit": metric.unit.display,
        "system": UCUM,
        "code": metric.unit.code,
    }


def _code(metric: Metric) -> dict[str, Any]:
    return {
        "coding": [{"system": metric.system, "code": metric.code, "display": metric.en}],
        "text": metric.ru,
    }


def to_observation(patient_id: str, reading: Reading) -> dict[str, Any]:
    """A checked reading as an Observation (call :func:`checked` first)."""
    if reading.metric == "bp":
        code = BP_PANEL
        category = "vital-signs"
        body: dict[str, Any] = {
            "code": {
                "coding": [{"system": LOINC, "code": BP_PANEL, "display": "Blood pressure panel"}],
                "text": "Артериальное давление",
            },
            "component": [
                {
                    "code": _code(METRIC["systolic"]),
                    "valueQuantity": _quantity(reading.value, METRIC["systolic"]),
                },
                {
                    "code": _code(METRIC["diastolic"]),
                    "valueQuantity": _quantity(reading.diastolic, METRIC["diastolic"]),
                },
            ],
        }
    else:
        metric = METRIC[reading.metric]
        code, category = metric.code, metric.category
        body = {"code": _code(metric)}
        if metric.key == "wellbeing":
            body["valueInteger"] = int(reading.value)
        else:
            body["valueQuantity"] = _quantity(reading.value, metric)
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [
            {
                "system": READING_ID_SYSTEM,
                "value": reading_identifier(patient_id, reading.device, reading.when, code),
            }
        ],
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category}]}],
        **body,
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": reading.when.isoformat(timespec="seconds"),
        "performer": [{"reference": f"Patient/{patient_id}"}],
    }
    if reading.device and reading.device != "manual":
        obs["extension"] = [{"url": DEVICE_EXTENSION, "valueString": reading.device[:200]}]
    if reading.note.strip():
        obs["note"] = [{"text": reading.note.strip()[:2000]}]
    return obs


def identifier_query(obs: dict[str, Any]) -> str:
    ident = obs["identifier"][0]
    return f"identifier={ident['system']}|{ident['value']}"


# -- reading stored Observations back --------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One stored reading as the diary shows it (values in the metric's unit)."""

    id: str
    metric: str  # "bp" or a metric key
    when: datetime
    value: float
    diastolic: float | None = None
    note: str = ""
    device: str = ""
    entered_by_patient: bool = True


def metric_of(obs: dict[str, Any]) -> Metric | None:
    for coding in (obs.get("code") or {}).get("coding") or []:
        found = BY_CODE.get((coding.get("system", ""), coding.get("code", "")))
        if found is not None:
            return found
    return None


def is_bp(obs: dict[str, Any]) -> bool:
    return any(
        c.get("system") == LOINC and c.get("code") == BP_PANEL
        for c in (obs.get("code") or {}).get("coding") or []
    )


def _quantity_value(metric: Metric, q: dict[str, Any] | None) -> float | None:
    if not isinstance(q, dict) or not isinstance(q.get("value"), int | float | Decimal):
        return None
    unit = q.get("code") or q.get("unit") or ""
    try:
        return _convert(metric, float(q["value"]), unit)
    except ReadingError:
        return None


def parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def point_of(obs: dict[str, Any], by_patient: bool = True) -> Point | None:
    when = parse_time(obs.get("effectiveDateTime", ""))
    if when is None:
        return None
    note = " ".join(n.get("text", "") for n in obs.get("note") or [])
    device = ""
    for ext in obs.get("extension") or []:
        if ext.get("url") == DEVICE_EXTENSION:
            device = str(ext.get("valueString", ""))
    rid = str(obs.get("id", ""))
    if is_bp(obs):
        values: dict[str, float] = {}
        for comp in obs.get("component") or []:
            metric = metric_of(comp)
            value = _quantity_value(metric, comp.get("valueQuantity")) if metric else None
            if metric is not None and value is not None:
                values[metric.key] = value
        if "systolic" not in values or "diastolic" not in values:
            return None
        return Point(
            rid, "bp", when, values["systolic"], values["diastolic"], note, device, by_patient
        )
    metric = metric_of(obs)
    if metric is None:
        return None
    if metric.key == "wellbeing":
        raw = obs.get("valueInteger")
        value = float(raw) if isinstance(raw, int) else None
    else:
        value = _quantity_value(metric, obs.get("valueQuantity"))
    if value is None:
        return None
    return Point(rid, metric.key, when, value, None, note, device, by_patient)


def check_observation(obs: dict[str, Any]) -> None:
    """The rules of the diary for a patient-reported Observation arriving over FHIR.

    Readings of a diary code must carry a plausible value in an accepted unit and a
    time that is not in the future; anything else a patient writes is left alone.
    """
    when_text = obs.get("effectiveDateTime")
    diary = is_bp(obs) or metric_of(obs) is not None
    if not diary:
        return
    if isinstance(when_text, str):
        when = parse_time(when_text)
        if when is None:
            raise ReadingError("reading_bad_time", f"cannot read the time '{when_text}'")
        check_time(when)
    elif obs.get("effectivePeriod") or obs.get("effectiveInstant"):
        pass
    else:
        raise ReadingError("reading_bad_time", "a diary reading needs effectiveDateTime")
    if is_bp(obs):
        values: dict[str, float] = {}
        for comp in obs.get("component") or []:
            metric = metric_of(comp)
            q = comp.get("valueQuantity")
            if metric is None or not isinstance(q, dict):
                continue
            if not isinstance(q.get("value"), int | float | Decimal):
                raise ReadingError("reading_no_value", f"{metric.en}: no value")
            values[metric.key] = check_value(
                metric, float(q["value"]), q.get("code") or q.get("unit") or ""
            )
        if (
            "systolic" in values
            and "diastolic" in values
            and values["diastolic"] >= values["systolic"]
        ):
            raise ReadingError("reading_bp_order", "diastolic must be lower than systolic")
        return
    metric = metric_of(obs)
    assert metric is not None
    if metric.key == "wellbeing":
        raw = obs.get("valueInteger")
        if isinstance(raw, int):
            check_value(metric, float(raw))
        return
    q = obs.get("valueQuantity")
    if isinstance(q, dict) and isinstance(q.get("value"), int | float | Decimal):
        check_value(metric, float(q["value"]), q.get("code") or q.get("unit") or "")
