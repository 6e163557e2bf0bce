"""Requests for medical documents, delivered asynchronously by a background job.

A person with an active consent asks for kinds of documents (visit protocols, lab
reports, imaging conclusions, certificates).  Each kind is one ``Task``:

* ``code`` ``document-request``, ``for`` the Patient, ``input`` the kind;
* ``restriction.period.end`` the promised date: requested + N business days
  (``Settings.document_request_business_days``, 1 by default, as the model system
  promises; Saturdays and Sundays do not count);
* ``status`` ``requested`` → ``in-progress`` (a failed attempt, with the reason in
  ``statusReason``, while it is retried) → ``completed`` with ``output`` references to
  the documents, or ``failed`` with the reason after the last retry, or
  ``cancelled`` when the consent is revoked.

The job (:func:`deliver_documents`, huey) gathers the card's documents of that kind
through the repository and completes the Task with a compare-and-set on its version,
so a revocation racing with it wins and nothing is delivered after it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from medcard import clock, jobs
from medcard.auth.accounts import Account
from medcard.clock import format_instant
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository, Stored
from medcard.onboarding import consent
from medcard.onboarding.store import (
    OPEN_STATUSES,
    TASK_CODE_SYSTEM,
    account_identifier,
    business_code,
    business_status,
    code_token,
    context_for,
    job_context,
    patient_id_of,
    repository,
    search,
)
from medcard.regions.zone import zone_of
from medcard.terminology.reference import DOCUMENT_CATEGORY_SYSTEM, V2_0074

log = logging.getLogger("medcard.onboarding")

CODE = "document-request"
KIND_SYSTEM = "https://medcard.example/fhir/CodeSystem/document-request-kind"
MAX_DOCUMENTS = 200  # per request: the newest ones
RETRIES = 2
RETRY_DELAY_SECONDS = 30  # read at enqueue time (tests shorten it)


@dataclass(frozen=True)
class Kind:
    code: str
    resource_type: str
    categories: tuple[str, ...]  # category search tokens


KINDS: dict[str, Kind] = {
    k.code: k
    for k in (
        Kind("protocols", "DocumentReference", (f"{DOCUMENT_CATEGORY_SYSTEM}|clinical-note",)),
        Kind("lab", "DiagnosticReport", (f"{V2_0074}|LAB",)),
        Kind("imaging", "DiagnosticReport", (f"{V2_0074}|RAD",)),
        Kind(
            "certificates",
            "DocumentReference",
            (
                f"{DOCUMENT_CATEGORY_SYSTEM}|certificate",
                f"{DOCUMENT_CATEGORY_SYSTEM}|medical-report",
            ),
        ),
    )
}


class DocumentsError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Output:
    resource_type: str
    id: str
    display: str


@dataclass(frozen=True)
class DocumentRequest:
    id: str
    kind: str
    status: str
    business: str
    authored: dt.datetime | None
    due: dt.datetime | None
    finished: dt.datetime | None
    reason: str
    outputs: list[Output] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def overdue(self) -> bool:
        return self.open and self.due is not None and clock.now() > self.due

    @property
    def late(self) -> bool:
        """Delivered after the promised date."""
        return (
            self.status == "completed"
            and self.due is not None
            and self.finished is not None
            and self.finished > self.due
        )

    @classmethod
    def of(cls, stored: Stored) -> DocumentRequest:
        task = stored.json()
        outputs = []
        for item in task.get("output") or []:
            ref = str((item.get("valueReference") or {}).get("reference") or "")
            rtype, _, rid = ref.partition("/")
            if rid:
                display = str((item.get("valueReference") or {}).get("display") or ref)
                outputs.append(Output(rtype, rid, display))
        return cls(
            id=stored.id,
            kind=kind_of(task),
            status=str(task.get("status")),
            business=business_code(task),
            authored=_instant(task.get("authoredOn")),
            due=_instant(((task.get("restriction") or {}).get("period") or {}).get("end")),
            finished=_instant((task.get("executionPeriod") or {}).get("end")),
            reason=str((task.get("statusReason") or {}).get("text") or ""),
            outputs=outputs,
        )


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def kind_of(task: dict[str, Any]) -> str:
    for item in task.get("input") or []:
        for coding in (item.get("type") or {}).get("coding") or []:
            if coding.get("system") == KIND_SYSTEM:
                return str(item.get("valueCode") or "")
    return ""


def due_after(start: dt.datetime, business_days: int) -> dt.datetime:
    """``start`` moved forward by business days, Saturdays and Sundays skipped.

    Friday 15:00 + 1 is Monday 15:00; a request made at the weekend starts counting
    on Monday morning, so Saturday + 1 is the end of Monday.  Days are counted in
    ``start``'s zone: the caller passes the patient's region's local time.
    """
    if start.weekday() >= 5:
        monday = start + dt.timedelta(days=7 - start.weekday())
        start = monday.replace(hour=0, minute=0, second=0, microsecond=0)
    due, left = start, max(0, business_days)
    while left:
        due += dt.timedelta(days=1)
        if due.weekday() < 5:
            left -= 1
    return due


# -- the person's side ----------------------------------------------------------------------


def _patient(account: Account) -> str:
    pid = patient_id_of(account.fhir_ref)
    if not pid:
        raise DocumentsError("ob_docs_no_card")
    return pid


def _open_of_patient(repo: Repository, patient_id: str) -> list[Stored]:
    return search(
        repo,
        "Task",
        ("patient", f"Patient/{patient_id}"),
        ("code", code_token(CODE)),
        ("status", ",".join(OPEN_STATUSES)),
    )


def requests_of(engine: Engine, account: Account) -> list[DocumentRequest]:
    """The card's document requests, newest first (delivered ones stay listed)."""
    pid = patient_id_of(account.fhir_ref)
    if not pid:
        return []
    with repository(engine, context_for(account)) as repo:
        found = search(
            repo,
            "Task",
            ("patient", f"Patient/{pid}"),
            ("code", code_token(CODE)),
            ("_sort", "-authored-on"),
        )
    return [DocumentRequest.of(s) for s in found]


def request_documents(
    engine: Engine, account: Account, kinds: list[str], *, business_days: int
) -> tuple[list[str], list[str]]:
    """File one request per kind and queue its job; (created task ids, kinds already open)."""
    pid = _patient(account)
    wanted = [k for k in dict.fromkeys(kinds) if k in KINDS]
    if not wanted:
        raise DocumentsError("ob_docs_choose")
    now = clock.now()
    # business days are the region's: Friday in Yekaterinburg begins at 19:00 UTC on Thursday
    local = now.astimezone(zone_of(engine, patient_id=pid)[0])
    created: list[str] = []
    skipped: list[str] = []
    with repository(engine, context_for(account)) as repo, repo.unit_of_work():
        if consent.active_in(repo, pid) is None:
            raise DocumentsError("ob_docs_consent_required")
        # Two identical requests at the same moment make one (issue 14): filings for one
        # card are serialised (an advisory lock on PostgreSQL, held to the commit; SQLite
        # writers already queue on BEGIN IMMEDIATE), so the second sees the first's Task.
        repo.conditional_match(
            "Task", f"patient=Patient/{pid}&code={code_token(CODE)}", "document request"
        )
        already = {kind_of(s.json()) for s in _open_of_patient(repo, pid)}
        for kind in wanted:
            if kind in already:
                skipped.append(kind)
                continue
            task = _task(account, pid, kind, now, due_after(local, business_days))
            created.append(repo.create(task).stored.id)
    for task_id in created:
        enqueue(engine, task_id)
    return created, skipped


def _task(
    account: Account, patient_id: str, kind: str, now: dt.datetime, due: dt.datetime
) -> dict[str, Any]:
    authored = format_instant(int(now.timestamp() * 1_000_000))
    return {
        "resourceType": "Task",
        "groupIdentifier": account_identifier(account.id),
        "status": "requested",
        "businessStatus": business_status("queued", "В очереди"),
        "intent": "order",
        "priority": "routine",
        "code": {
            "coding": [{"system": TASK_CODE_SYSTEM, "code": CODE}],
            "text": "Запрос медицинских документов",
        },
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored,
        "lastModified": authored,
        "requester": {"identifier": account_identifier(account.id), "display": account.login},
        "restriction": {"period": {"end": format_instant(int(due.timestamp() * 1_000_000))}},
        "input": [{"type": {"coding": [{"system": KIND_SYSTEM, "code": kind}]}, "valueCode": kind}],
    }


def enqueue(engine: Engine, task_id: str) -> None:
    """Queue the delivery; a queue that cannot take it fails the Task visibly."""
    try:
        deliver_documents(task_id=task_id, retry_delay=RETRY_DELAY_SECONDS)
    except Exception as exc:
        log.exception("document request %s could not be queued", task_id)
        _finish_failed(engine, task_id, f"очередь заданий недоступна: {exc}"[:300])


def cancel_open(repo: Repository, patient_id: str, reason: str) -> int:
    """Cancel the card's open document requests (inside the caller's unit of work)."""
    cancelled = 0
    for stored in _open_of_patient(repo, patient_id):
        task = stored.json()
        task["status"] = "cancelled"
        task["businessStatus"] = business_status("cancelled", "Отменён")
        task["statusReason"] = {"text": reason}
        task["lastModified"] = format_instant(clock.now_micros())
        repo.update("Task", stored.id, task, if_match=stored.etag)
        cancelled += 1
    return cancelled


# -- the job ----------------------------------------------------------------------------------


def _label(resource: dict[str, Any]) -> str:
    rtype = resource.get("resourceType")
    if rtype == "DiagnosticReport":
        code = resource.get("code") or {}
        name = code.get("text") or next(
            (c.get("display") for c in code.get("coding") or [] if c.get("display")), ""
        )
        when = str(resource.get("effectiveDateTime") or resource.get("issued") or "")[:10]
    else:
        name = resource.get("description") or (resource.get("type") or {}).get("text") or ""
        when = str(resource.get("date") or "")[:10]
    return " — ".join(p for p in (str(name) or str(rtype), when) if p)


def gather(repo: Repository, patient_id: str, kind: Kind) -> list[Stored]:
    """The card's documents of one kind, newest first."""
    found = search(
        repo,
        kind.resource_type,
        ("patient", f"Patient/{patient_id}"),
        ("category", ",".join(kind.categories)),
        ("_sort", "-date"),
        count=MAX_DOCUMENTS,
    )
    return [s for s in found if s.json().get("status") != "entered-in-error"]


def _update(repo: Repository, stored: Stored, task: dict[str, Any]) -> Stored | None:
    """Write with a compare-and-set; None when someone changed the Task meanwhile."""
    task["lastModified"] = format_instant(clock.now_micros())
    try:
        with repo.unit_of_work():
            return repo.update("Task", stored.id, task, if_match=stored.etag).stored
    except FhirError as exc:
        if exc.status == 412:
            return None
        raise


def deliver(engine: Engine, task_id: str) -> str:
    """Run one delivery; returns the Task's status afterwards."""
    with repository(engine, job_context()) as repo:
        for _ in range(3):  # a concurrent change (revocation) makes us look again
            stored = repo.read("Task", task_id)
            task = stored.json()
            if task.get("status") not in ("requested", "in-progress"):
                return str(task.get("status"))
            pid = patient_id_of(str((task.get("for") or {}).get("reference") or ""))
            kind = KINDS.get(kind_of(task))
            if consent.active_in(repo, pid) is None:
                task["status"] = "cancelled"
                task["businessStatus"] = business_status("cancelled", "Отменён")
                task["statusReason"] = {
                    "text": "Согласие на обработку персональных данных отозвано"
                }
            elif kind is None:
                task["status"] = "failed"
                task["businessStatus"] = business_status("failed", "Не выполнен")
                task["statusReason"] = {"text": "неизвестный вид документов"}
            else:
                documents = gather(repo, pid, kind)
                task["status"] = "completed"
                task["businessStatus"] = business_status("delivered", "Документы получены")
                task.pop("statusReason", None)
                task["executionPeriod"] = {
                    "start": task.get("authoredOn"),
                    "end": format_instant(clock.now_micros()),
                }
                task["output"] = [
                    {
                        "type": {"coding": [{"system": KIND_SYSTEM, "code": kind.code}]},
                        "valueReference": {
                            "reference": f"{d.resource_type}/{d.id}",
                            "display": _label(d.json()),
                        },
                    }
                    for d in documents
                ]
                if not task["output"]:
                    task.pop("output")
            if _update(repo, stored, task) is not None:
                return str(task["status"])
    raise RuntimeError(f"Task/{task_id} kept changing while it was delivered")


def _note_retry(engine: Engine, task_id: str, reason: str) -> None:
    """Show that an attempt failed and another will follow (not stuck, not yet failed)."""
    with repository(engine, job_context()) as repo:
        stored = repo.read("Task", task_id)
        task = stored.json()
        if task.get("status") not in ("requested", "in-progress"):
            return
        task["status"] = "in-progress"
        task["businessStatus"] = business_status("retrying", "Повторная попытка")
        task["statusReason"] = {"text": reason}
        _update(repo, stored, task)


def _finish_failed(engine: Engine, task_id: str, reason: str) -> None:
    with repository(engine, job_context()) as repo:
        for _ in range(3):
            stored = repo.read("Task", task_id)
            task = stored.json()
            if task.get("status") not in OPEN_STATUSES:
                return
            task["status"] = "failed"
            task["businessStatus"] = business_status("failed", "Не выполнен")
            task["statusReason"] = {"text": reason}
            if _update(repo, stored, task) is not None:
                return


def _on_final_failure(kwargs: dict[str, Any], reason: str) -> None:
    _finish_failed(jobs.runtime().engine, str(kwargs.get("task_id")), reason)


@jobs.job(retries=RETRIES, retry_delay=RETRY_DELAY_SECONDS, on_failure=_on_final_failure)
def deliver_documents(*, task_id: str) -> None:
    """huey task: deliver one document request (retried; failure recorded on the Task)."""
    engine = jobs.runtime().engine
    try:
        deliver(engine, task_id)
    except Exception as exc:
        reason = (str(exc).strip() or type(exc).__name__)[:300]
        try:
            _note_retry(engine, task_id, reason)
        except Exception:
            log.exception("document request %s: noting the failed attempt failed", task_id)
        raise
