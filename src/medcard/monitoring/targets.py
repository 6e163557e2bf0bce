"""Personal target ranges, set by the attending physician as FHIR Goals.

One active Goal per patient and measure (identifier ``diary-target|<patient>-<metric>``,
so setting a target again is a conditional update of the same Goal).  Goals a patient
wrote are ignored: targets are the physician's word.  Without a Goal the usual adult
range of ``metrics.METRICS`` applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from medcard.access.policy import entered_by_patient
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.monitoring.metrics import DIARY_SYSTEM, METRIC, METRICS, UCUM, Metric
from medcard.monitoring.readings import Point

TARGET_ID_SYSTEM = "https://medcard.example/fhir/sid/diary-target"


@dataclass(frozen=True)
class Target:
    metric: str
    low: float | None
    high: float | None
    personal: bool  # set by the physician (else the usual range)
    set_by: str = ""

    def contains(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


class TargetError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def default_targets() -> dict[str, Target]:
    return {m.key: Target(m.key, m.target[0], m.target[1], False) for m in METRICS}


def _bound(range_: dict[str, Any], side: str) -> float | None:
    value = (range_.get(side) or {}).get("value")
    return float(value) if isinstance(value, int | float) else None


def targets_for(repo: Repository, patient_id: str) -> dict[str, Target]:
    out = default_targets()
    req = parse(
        "Goal",
        [("patient", patient_id), ("lifecycle-status", "active"), ("_count", "100")],
    )
    for stored in repo.search(req).matches:
        goal = stored.json()
        if entered_by_patient(goal):
            continue
        if not any(i.get("system") == TARGET_ID_SYSTEM for i in goal.get("identifier") or []):
            continue
        setter = (goal.get("expressedBy") or {}).get("reference", "")
        for target in goal.get("target") or []:
            for coding in (target.get("measure") or {}).get("coding") or []:
                metric = next(
                    (
                        m
                        for m in METRICS
                        if (m.system, m.code) == (coding.get("system"), coding.get("code"))
                    ),
                    None,
                )
                rng = target.get("detailRange")
                if metric is not None and isinstance(rng, dict):
                    out[metric.key] = Target(
                        metric.key, _bound(rng, "low"), _bound(rng, "high"), True, setter
                    )
    return out


def _q(value: float, metric: Metric) -> dict[str, Any]:
    return {"value": value, "unit": metric.unit.display, "system": UCUM, "code": metric.unit.code}


def goal_resource(
    patient_id: str, metric: Metric, low: float | None, high: float | None, author: str, today: date
) -> dict[str, Any]:
    if low is None and high is None:
        raise TargetError("target_empty")
    for v in (low, high):
        if v is not None and not metric.plausible[0] <= v <= metric.plausible[1]:
            raise TargetError("target_implausible")
    if low is not None and high is not None and low >= high:
        raise TargetError("target_order")
    rng: dict[str, Any] = {}
    if low is not None:
        rng["low"] = _q(low, metric)
    if high is not None:
        rng["high"] = _q(high, metric)
    shown = f"{'' if low is None else f'{low:g}'}–{'' if high is None else f'{high:g}'}"
    goal: dict[str, Any] = {
        "resourceType": "Goal",
        "identifier": [{"system": TARGET_ID_SYSTEM, "value": f"{patient_id}-{metric.key}"}],
        "lifecycleStatus": "active",
        "category": [{"coding": [{"system": DIARY_SYSTEM, "code": "diary-target"}]}],
        "description": {"text": f"{metric.ru}: целевой диапазон {shown} {metric.unit.display}"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "startDate": today.isoformat(),
        "target": [
            {
                "measure": {"coding": [{"system": metric.system, "code": metric.code}]},
                "detailRange": rng,
            }
        ],
    }
    if author.startswith("Practitioner/"):
        goal["expressedBy"] = {"reference": author}
    return goal


def set_target(
    repo: Repository,
    patient_id: str,
    metric_key: str,
    low: float | None,
    high: float | None,
    today: date,
) -> None:
    metric = METRIC[metric_key]
    goal = goal_resource(patient_id, metric, low, high, repo.ctx.actor, today)
    with repo.unit_of_work():
        repo.conditional_update(
            "Goal", f"identifier={TARGET_ID_SYSTEM}|{patient_id}-{metric.key}", goal
        )


# -- flags ------------------------------------------------------------------------------------


def flags(point: Point, targets: dict[str, Target]) -> tuple[str, bool]:
    """("high" | "low" | "", far): where the reading lies against its target."""
    pairs = (
        [("systolic", point.value), ("diastolic", point.diastolic or 0.0)]
        if point.metric == "bp"
        else [(point.metric, point.value)]
    )
    side, far = "", False
    for key, value in pairs:
        metric, target = METRIC[key], targets.get(key)
        if target is None:
            continue
        margin = metric.alert_margin
        if target.high is not None and value > target.high:
            side = side or "high"
            far = far or (margin is not None and value > target.high + margin)
        elif target.low is not None and value < target.low:
            side = side or "low"
            far = far or (margin is not None and value < target.low - margin)
    return side, far
