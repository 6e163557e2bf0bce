"""The doctor's inbox of new lab results: reports for referrals they sent, not yet
acknowledged, abnormal first (issue 20, item 2).

Acknowledging is recorded as a FHIR ``Task`` (status completed, ``focus`` = the
DiagnosticReport, ``owner`` = the doctor), so other systems see it and the record
says who looked at the result and when; the report itself (often signed by the lab)
is not touched.  Everything goes through the caller's repository: the gate decides
what the doctor may see, and every search and write is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medcard.clock import format_instant, now_micros
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.terminology.reference import MEDCARD_FHIR_BASE

ACK_SYSTEM = f"{MEDCARD_FHIR_BASE}/CodeSystem/workflow-task"
ACK_CODE = "result-acknowledged"
ABNORMAL = frozenset({"A", "AA", "H", "HH", "L", "LL", "HU", "LU"})
LIMIT = 200


@dataclass(frozen=True)
class NewResult:
    report_id: str
    patient_id: str
    title: str
    issued: str
    abnormal: bool


def _acknowledged(repo: Repository, practitioner_ref: str) -> set[str]:
    found = repo.search(
        parse(
            "Task",
            [("owner", practitioner_ref), ("code", f"{ACK_SYSTEM}|{ACK_CODE}"), ("_count", "1000")],
        )
    ).matches
    return {
        str((t.json().get("focus") or {}).get("reference", "")).removeprefix("DiagnosticReport/")
        for t in found
    }


def _abnormal(observations: list[dict[str, Any]]) -> bool:
    for o in observations:
        for concept in o.get("interpretation") or []:
            if any(c.get("code") in ABNORMAL for c in concept.get("coding") or []):
                return True
    return False


def new_results(repo: Repository, practitioner_ref: str) -> list[NewResult]:
    """Lab reports for the doctor's referrals they have not acknowledged, abnormal first."""
    result = repo.search(
        parse(
            "DiagnosticReport",
            [
                ("based-on:ServiceRequest.requester", practitioner_ref),
                ("_sort", "-issued"),
                ("_include", "DiagnosticReport:result"),
                ("_count", str(LIMIT)),
            ],
            max_count=LIMIT,
        )
    )
    done = _acknowledged(repo, practitioner_ref)
    observations = {f"Observation/{s.id}": s.json() for s in result.included}
    out = []
    for s in result.matches:
        if s.id in done:
            continue
        report = s.json()
        members = [
            observations[r["reference"]]
            for r in report.get("result") or []
            if r.get("reference") in observations
        ]
        code = report.get("code") or {}
        title = str(code.get("text") or next(iter(code.get("coding") or [{}])).get("display", ""))
        out.append(
            NewResult(
                s.id,
                s.patient_id,
                title,
                str(report.get("issued") or report.get("effectiveDateTime") or ""),
                _abnormal(members),
            )
        )
    out.sort(key=lambda r: not r.abnormal)  # stable: newest first within each group
    return out


def acknowledge(repo: Repository, practitioner_ref: str, report_id: str) -> str:
    """Record that the doctor has seen the result (once); returns the Task id."""
    report = repo.read("DiagnosticReport", report_id)  # the gate: 404 if not theirs to see
    if report_id in _acknowledged(repo, practitioner_ref):
        return ""
    now = format_instant(now_micros())
    with repo.unit_of_work():
        created = repo.create(
            {
                "resourceType": "Task",
                "status": "completed",
                "intent": "order",
                "code": {
                    "coding": [
                        {
                            "system": ACK_SYSTEM,
                            "code": ACK_CODE,
                            "display": "Результат просмотрен врачом",
                        }
                    ]
                },
                "focus": {"reference": f"DiagnosticReport/{report_id}"},
                "for": {"reference": f"Patient/{report.patient_id}"},
                "owner": {"reference": practitioner_ref},
                "requester": {"reference": practitioner_ref},
                "authoredOn": now,
                "lastModified": now,
            }
        )
    return created.stored.id
