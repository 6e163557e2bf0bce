"""What a new report must satisfy, on every path that files one (pages, API, import).

Registered into ``medcard.fhir.hooks`` (``install``): a correction Task is created only
when it names the patient, at least one disputed entry, every entry exists in that
patient's card and is of a kind a card shows, none of them is already disputed in an
open report, and its owner is one of the five authorities routed for that patient.
Once filed, a report changes only through the corrections service (review, questions,
answers, decision, escalation): other updates are refused.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import text

from medcard.access.context import AccessContext
from medcard.corrections.acting import FILING, ReportError, in_service
from medcard.corrections.authorities import route
from medcard.corrections.model import (
    CORRECTION,
    INPUT_SYSTEM,
    OPEN_TASK_STATUSES,
    PROBLEM_SYSTEM,
    TASK_TYPE_SYSTEM,
    Problem,
    is_correction,
    read_report,
    ref_id,
)
from medcard.db.locks import FILING_LOCKS
from medcard.fhir import hooks
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import ID, Repository, Stored

# Entries a card shows and R4 can mark entered-in-error.
DISPUTABLE: Final = frozenset(
    {
        "AllergyIntolerance",
        "Appointment",
        "ChargeItem",  # issue 9: a billed service line the patient did not receive
        "CarePlan",
        "Composition",
        "Condition",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "ImagingStudy",
        "Immunization",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Procedure",
        "ServiceRequest",
    }
)
MAX_ENTRIES: Final = 50


def split_ref(ref: str) -> tuple[str, str] | None:
    parts = ref.split("/")
    if len(parts) != 2 or parts[0] not in DISPUTABLE or not ID.fullmatch(parts[1]):
        return None
    return parts[0], parts[1]


def load_entry(repo: Repository, ref: str, patient_id: str) -> Stored:
    """The entry ``ref`` of ``patient_id``'s card, through ``repo``'s gate."""
    parsed = split_ref(ref)
    if parsed is None:
        raise ReportError(422, "corr_err_bad_entry", f"'{ref[:80]}' is not an entry of the card")
    try:
        stored = repo.read(*parsed)
    except FhirError:
        raise ReportError(
            422, "corr_err_unknown_entry", f"{ref} is not an entry of this card"
        ) from None
    if stored.patient_id != patient_id:
        raise ReportError(422, "corr_err_other_patient", f"{ref} belongs to another patient's card")
    return stored


def open_reports_on(repo: Repository, ref: str) -> list[str]:
    """Ids of open correction Tasks disputing ``ref``."""
    req = parse(
        "Task",
        [
            ("code", f"{TASK_TYPE_SYSTEM}|{CORRECTION}"),
            ("input-reference", ref),
            ("status", ",".join(OPEN_TASK_STATUSES)),
            ("_count", "20"),
        ],
    )
    return [m.id for m in repo.search(req).matches]


def check_new_report(repo: Repository, task: dict[str, Any]) -> None:
    """Refuse a correction Task that must not be filed (``repo``: unrestricted reader)."""
    report = read_report(task)
    patient_ref = str((task.get("for") or {}).get("reference", ""))
    if not patient_ref.startswith("Patient/"):
        raise ReportError(422, "corr_err_no_patient", "A report names the patient (Task.for)")
    pid = ref_id(patient_ref)
    if task.get("status") != "requested" or task.get("output"):
        raise ReportError(
            422, "corr_err_bad_status", "A new report has status 'requested' and no decision"
        )
    if not report.entries:
        raise ReportError(
            422, "corr_err_no_entries", "A report names at least one disputed entry (Task.input)"
        )
    if len(report.all_entries) > MAX_ENTRIES:
        raise ReportError(422, "corr_err_too_many", f"At most {MAX_ENTRIES} entries per report")
    problems = [i for i in task.get("input") or [] if _input_code(i) == "problem"]
    if problems and report.problem not in {p.value for p in Problem}:
        raise ReportError(422, "corr_err_problem", "The problem is one of " + ", ".join(Problem))
    for ref in dict.fromkeys(report.all_entries):
        load_entry(repo, ref, pid)
    for att in report.attachments:
        try:
            stored = repo.read("Binary", ref_id(att.ref)) if att.ref.startswith("Binary/") else None
        except FhirError:
            stored = None
        if stored is None or stored.patient_id != pid:
            raise ReportError(
                422, "corr_err_attachment_ref", f"{att.ref} is not a file of this patient's card"
            )
    refuse_disputed_twice(repo, task)
    try:
        patient = repo.read("Patient", pid).json()
    except FhirError:
        raise ReportError(422, "corr_err_no_patient", f"{patient_ref} is not known") from None
    allowed = {a.ref for a in route(repo, patient).values()}
    if report.owner_ref not in allowed:
        raise ReportError(
            422,
            "corr_err_authority",
            "The owner must be one of the patient's authorities: " + ", ".join(sorted(allowed)),
        )


def refuse_disputed_twice(repo: Repository, task: dict[str, Any]) -> None:
    """Refuse a report disputing an entry an open report already disputes.

    Filed under the card's lock (``service.file_report``) this runs again just before
    the write, so two reports sent at the same moment make one (issue 14)."""
    report = read_report(task)
    ignore = {report.id, ref_id(report.previous)}
    for ref in dict.fromkeys(report.entries):
        if set(open_reports_on(repo, ref)) - ignore:
            raise ReportError(
                409,
                "corr_err_duplicate",
                f"{ref} is already disputed in an open report; wait for its decision",
            )


def _input_code(item: dict[str, Any]) -> str:
    for c in (item.get("type") or {}).get("coding") or []:
        if c.get("system") == INPUT_SYSTEM:
            return str(c.get("code", ""))
    return ""


def guard(event: hooks.WriteEvent) -> None:
    res = event.resource
    if not is_correction(res):
        return
    if event.interaction == "delete":
        # Issue 14: a report, once made, is routed to its authority; it ends through
        # the review (decision or escalation), and its history stays with the card.
        raise ReportError(
            403,
            "corr_err_delete",
            "A correction report is never deleted: it is answered through its review, "
            "and its history is kept",
        )
    if event.interaction == "update":
        if not in_service():
            raise ReportError(
                403,
                "corr_err_forbidden",
                "A correction report changes only through its review (questions, answers, "
                "decision, escalation)",
            )
        return
    _lock_disputed(event)
    repo = Repository(
        event.engine, AccessContext.system("system:corrections", purpose="check correction report")
    )
    # Look-ups of the check itself are not written to the audit: the write they guard is.
    check_new_report(repo, res)


def _lock_disputed(event: hooks.WriteEvent) -> None:
    """A report posted straight to ``/fhir/Task`` takes the entry locks the service takes
    (issue 14 item 7), until its transaction commits: of twenty identical reports sent at
    once, one is filed and the others meet it (409).  PostgreSQL only: SQLite writers
    already take turns, and the duplicate check after the lock sees the first's report."""
    if FILING.get() or event.conn is None or event.engine.dialect.name != "postgresql":
        return
    pid = ref_id(str((event.resource.get("for") or {}).get("reference", "")))
    for ref in sorted(set(read_report(event.resource).entries)):
        got = event.conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:ns, hashtext(:name))"),
            {"ns": FILING_LOCKS, "name": f"{pid}:{ref}"},
        ).scalar()
        if not got:
            raise ReportError(
                409, "corr_err_duplicate", "An entry of this report is being disputed right now"
            )


def install() -> None:
    hooks.register("corrections.reports", guard)


__all__ = ["DISPUTABLE", "PROBLEM_SYSTEM", "check_new_report", "guard", "install"]
