"""The diary service: save readings (deduplicated), read them back, list flagged ones.

Pages, the CSV import and the tests call these with a repository bound to the person
acting, so the gate and the audit apply; nothing here talks SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medcard.access.policy import ENTERED_BY_SYSTEM, entered_by_patient
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.monitoring.metrics import BP_PANEL, LOINC, METRIC, METRICS
from medcard.monitoring.readings import (
    Point,
    Reading,
    ReadingError,
    checked,
    identifier_query,
    point_of,
    to_observation,
)
from medcard.monitoring.targets import Target, flags, targets_for

CREATED, DUPLICATE = "created", "duplicate"
DIARY_CODES = ",".join(
    [f"{LOINC}|{BP_PANEL}", *(f"{m.system}|{m.code}" for m in METRICS), f"{LOINC}|2339-0"]
)


def bmi_of(weight_kg: float, height_cm: float) -> float:
    return round(weight_kg / (height_cm / 100) ** 2, 1)


def save_readings(repo: Repository, patient_id: str, readings: list[Reading]) -> list[str]:
    """Check and store readings in one transaction; CREATED or DUPLICATE for each.

    A reading already stored (same identifier: patient, device, minute, code) is not
    stored again: the conditional create answers with the existing Observation.
    """
    observations = [to_observation(patient_id, checked(r)) for r in readings]
    out = []
    with repo.unit_of_work():
        for obs in observations:
            result = repo.create(obs, if_none_exist=identifier_query(obs))
            out.append(CREATED if result.status == 201 else DUPLICATE)
    return out


def with_bmi(readings: list[Reading], height_cm: float | None) -> list[Reading]:
    """Add a BMI reading for each weight when a height is known."""
    if not height_cm:
        return readings
    extra = []
    for r in readings:
        if r.metric == "weight":
            weight = checked(r).value
            extra.append(Reading("bmi", r.when, bmi_of(weight, height_cm), device=r.device))
    return readings + extra


def latest_height(repo: Repository, patient_id: str) -> float | None:
    req = parse(
        "Observation",
        [("patient", patient_id), ("code", f"{LOINC}|8302-2"), ("_sort", "-date"), ("_count", "1")],
    )
    for stored in repo.search(req).matches:
        point = point_of(stored.json())
        if point is not None:
            return point.value
    return None


def load_points(
    repo: Repository, patient_id: str, since: datetime, *, limit: int = 2000
) -> list[Point]:
    """Diary readings of a patient since ``since``, oldest first (clinicians' included)."""
    req = parse(
        "Observation",
        [
            ("patient", patient_id),
            ("code", DIARY_CODES),
            ("date", "ge" + since.isoformat(timespec="seconds")),
            ("_sort", "date"),
            ("_count", str(limit)),
        ],
        max_count=limit,
    )
    out = []
    for stored in repo.search(req).matches:
        obs = stored.json()
        point = point_of(obs, entered_by_patient(obs))
        if point is not None:
            out.append(point)
    return out


@dataclass(frozen=True)
class Alert:
    patient_id: str
    point: Point
    side: str
    target: dict[str, Target]


def flagged(points: list[Point], targets: dict[str, Target]) -> list[tuple[Point, str]]:
    """Readings far out of their target range, newest first."""
    out = []
    for p in points:
        side, far = flags(p, targets)
        if far:
            out.append((p, side))
    return sorted(out, key=lambda x: x[0].when, reverse=True)


def alerts(repo: Repository, since: datetime, *, limit: int = 500) -> list[Alert]:
    """Far-out-of-range patient-reported readings of every patient the caller may see.

    For the attending physician: the gate limits the search to their patients.
    """
    req = parse(
        "Observation",
        [
            ("_tag", f"{ENTERED_BY_SYSTEM}|patient"),
            ("code", DIARY_CODES),
            ("date", "ge" + since.isoformat(timespec="seconds")),
            ("_sort", "-date"),
            ("_count", str(limit)),
        ],
        max_count=limit,
    )
    try:
        matches = repo.search(req).matches
    except FhirError:
        return []
    by_patient: dict[str, list[Point]] = {}
    for stored in matches:
        point = point_of(stored.json())
        if point is not None:
            by_patient.setdefault(stored.patient_id, []).append(point)
    out = []
    for pid, points in by_patient.items():
        targets = targets_for(repo, pid)
        out += [Alert(pid, p, side, targets) for p, side in flagged(points, targets)]
    return sorted(out, key=lambda a: a.point.when, reverse=True)


def period_start(period: str, now: datetime) -> datetime:
    days = {"day": 1, "week": 7, "month": 31}.get(period, 7)
    return now - timedelta(days=days)


def errors_of(exc: ReadingError) -> dict[str, Any]:
    return {"key": exc.key, "message": exc.message, **exc.params}


__all__ = ["METRIC", "ReadingError", "save_readings"]
