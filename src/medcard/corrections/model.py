"""The shape of a correction report: a FHIR ``Task`` (issue 7), and its reading.

A report is a Task so that other portals can file and follow it over the API:

* ``code`` = ``task-type|correction``; ``for`` = the patient whose card is wrong;
  ``requester`` = who filed it (the patient, a parent); ``owner`` = the authority
  (an Organization) whose queue it lands in; ``authoredOn``; ``restriction.period.end``
  = the answer deadline;
* ``input``: ``disputed-entry`` (valueReference, one per wrong entry; a lab report's
  results come along as ``included-entry``), ``problem`` (did-not-happen / not-mine /
  wrong-data), ``correct-value``, ``comment``, ``attachment`` (valueReference to a
  Binary in the patient's compartment), ``previous-report`` (escalation);
* ``status`` + ``businessStatus``: submitted (requested) → in review (in-progress) →
  info requested (on-hold) → decided (completed, or rejected); escalated (cancelled)
  when an overdue report moved to another authority;
* ``note``: the conversation (questions, answers, the decision), each note marked with
  its kind; ``output``: decision, reason, invalid entries, the Provenance, moved copies.

Search parameters: ``code``, ``owner``, ``patient``, ``status`` and medcard's
``input-reference`` (the reviewer gate reads it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from medcard import clock

BASE: Final = "https://medcard.example/fhir"
TASK_TYPE_SYSTEM: Final = f"{BASE}/CodeSystem/task-type"
CORRECTION: Final = "correction"
INPUT_SYSTEM: Final = f"{BASE}/CodeSystem/correction-input"
OUTPUT_SYSTEM: Final = f"{BASE}/CodeSystem/correction-output"
PROBLEM_SYSTEM: Final = f"{BASE}/CodeSystem/correction-problem"
STATUS_SYSTEM: Final = f"{BASE}/CodeSystem/correction-status"
DECISION_SYSTEM: Final = f"{BASE}/CodeSystem/correction-decision"
NOTE_KIND_URL: Final = f"{BASE}/StructureDefinition/correction-note-kind"
COMMUNICATION_SYSTEM: Final = f"{BASE}/CodeSystem/communication-category"
ACCOUNT_SYSTEM: Final = f"{BASE}/sid/account"
# The same system the reference data uses for an organisation's kind and region.
ORG_KIND_SYSTEM: Final = f"{BASE}/CodeSystem/organization-kind"
REGION_EXTENSION_URL: Final = f"{BASE}/StructureDefinition/region"


class Problem(StrEnum):
    DID_NOT_HAPPEN = "did-not-happen"
    NOT_MINE = "not-mine"
    WRONG_DATA = "wrong-data"


class Status(StrEnum):
    SUBMITTED = "submitted"
    IN_REVIEW = "in-review"
    INFO_REQUESTED = "info-requested"
    DECIDED = "decided"
    ESCALATED = "escalated"


# FHIR Task.status for each of our statuses (decided: completed, or rejected).
TASK_STATUS: Final = {
    Status.SUBMITTED: "requested",
    Status.IN_REVIEW: "in-progress",
    Status.INFO_REQUESTED: "on-hold",
    Status.ESCALATED: "cancelled",
}
OPEN_TASK_STATUSES: Final = ("requested", "in-progress", "on-hold")


class Decision(StrEnum):
    ACCEPTED = "accepted"
    PARTLY = "partly-accepted"
    REJECTED = "rejected"


class Action(StrEnum):
    """What happens to one invalid entry besides leaving the card."""

    WITHDRAW = "withdraw"  # entered-in-error only
    MOVE = "move"  # a copy goes to the right patient's card
    PURGE = "purge"  # the content is removed, the audit fact stays


class NoteKind(StrEnum):
    QUESTION_PATIENT = "question-patient"
    QUESTION_AUTHOR = "question-author"
    ANSWER = "answer"
    DECISION = "decision"
    ESCALATION = "escalation"
    HISTORY = "history"  # carried over from the report this one escalates


@dataclass(frozen=True)
class Note:
    kind: str
    author: str  # display
    author_ref: str
    time: str
    text: str


@dataclass(frozen=True)
class Attached:
    ref: str  # Binary/x
    title: str
    content_type: str
    size: int


@dataclass
class Report:
    """A correction Task as the pages and the service read it."""

    id: str
    version: int
    patient_id: str
    patient_name: str
    requester: str
    owner_ref: str
    owner_name: str
    task_status: str
    status: Status
    problem: str
    correct_value: str
    comment: str
    entries: list[str]  # disputed entries, "Immunization/x"
    included: list[str]  # results of a disputed lab report
    attachments: list[Attached]
    notes: list[Note]
    authored: dt.datetime
    deadline: dt.datetime | None
    decision: str = ""
    reason: str = ""
    invalid: list[str] = field(default_factory=list)
    provenance: str = ""
    moved: list[str] = field(default_factory=list)
    previous: str = ""  # Task/x this one escalates
    escalated_to: str = ""
    decided_at: dt.datetime | None = None
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"Task/{self.id}"

    @property
    def open(self) -> bool:
        return self.task_status in OPEN_TASK_STATUSES

    @property
    def overdue(self) -> bool:
        return self.open and self.deadline is not None and clock.now() > self.deadline

    @property
    def all_entries(self) -> list[str]:
        return [*self.entries, *self.included]

    @property
    def escalable(self) -> bool:
        """A rejected report, or one whose authority let the deadline pass."""
        return (self.status == Status.DECIDED and self.decision == Decision.REJECTED) or (
            self.overdue
        )


def coding(system: str, code: str, display: str = "") -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str = "") -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def input_item(code: str, **value: Any) -> dict[str, Any]:
    return {"type": concept(INPUT_SYSTEM, code), **value}


def output_item(code: str, **value: Any) -> dict[str, Any]:
    return {"type": concept(OUTPUT_SYSTEM, code), **value}


def code_of(item: dict[str, Any], system: str) -> str:
    for c in (item.get("type") or {}).get("coding") or []:
        if c.get("system") == system:
            return str(c.get("code", ""))
    return ""


def codes(value: Any, system: str) -> list[str]:
    if not isinstance(value, dict):
        return []
    return [
        str(c.get("code"))
        for c in value.get("coding") or []
        if isinstance(c, dict) and c.get("system") == system and c.get("code")
    ]


def is_correction(task: dict[str, Any]) -> bool:
    return task.get("resourceType") == "Task" and CORRECTION in codes(
        task.get("code"), TASK_TYPE_SYSTEM
    )


def parse_instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value[:10])
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def ref_id(ref: str) -> str:
    return ref.split("/", 1)[1] if "/" in ref else ref


def _ref(value: Any) -> str:
    return str((value or {}).get("reference", "")) if isinstance(value, dict) else ""


def status_of(task: dict[str, Any]) -> Status:
    for code in codes(task.get("businessStatus"), STATUS_SYSTEM):
        try:
            return Status(code)
        except ValueError:
            continue
    # A Task filed over the API may carry only the FHIR status.
    return {
        "in-progress": Status.IN_REVIEW,
        "on-hold": Status.INFO_REQUESTED,
        "completed": Status.DECIDED,
        "rejected": Status.DECIDED,
        "cancelled": Status.ESCALATED,
    }.get(str(task.get("status")), Status.SUBMITTED)


def read_report(task: dict[str, Any], deadline_days: int | None = None) -> Report:
    """A Report from a correction Task (what was filed over the API reads the same)."""
    entries, included, attachments = [], [], []
    problem = correct = comment = previous = ""
    for item in task.get("input") or []:
        code = code_of(item, INPUT_SYSTEM)
        ref = _ref(item.get("valueReference"))
        if code == "disputed-entry" and ref:
            entries.append(ref)
        elif code == "included-entry" and ref:
            included.append(ref)
        elif code == "attachment" and ref:
            att = item.get("valueReference") or {}
            ext = {e.get("url"): e for e in att.get("extension") or []}
            attachments.append(
                Attached(
                    ref,
                    str(att.get("display", "")),
                    str(
                        (ext.get(f"{BASE}/StructureDefinition/content-type") or {}).get(
                            "valueCode", ""
                        )
                    ),
                    int((ext.get(f"{BASE}/StructureDefinition/size") or {}).get("valueInteger", 0)),
                )
            )
        elif code == "problem":
            problem = (codes(item.get("valueCodeableConcept"), PROBLEM_SYSTEM) or [""])[0]
        elif code == "correct-value":
            correct = str(item.get("valueString", ""))
        elif code == "comment":
            comment = str(item.get("valueString", ""))
        elif code == "previous-report" and ref:
            previous = ref
    decision = reason = provenance = escalated_to = ""
    invalid, moved = [], []
    for item in task.get("output") or []:
        code = code_of(item, OUTPUT_SYSTEM)
        ref = _ref(item.get("valueReference"))
        if code == "decision":
            decision = (codes(item.get("valueCodeableConcept"), DECISION_SYSTEM) or [""])[0]
        elif code == "reason":
            reason = str(item.get("valueString", ""))
        elif code == "invalid-entry" and ref:
            invalid.append(ref)
        elif code == "provenance" and ref:
            provenance = ref
        elif code == "moved-to" and ref:
            moved.append(ref)
        elif code == "escalated-to" and ref:
            escalated_to = ref
    notes = []
    for n in task.get("note") or []:
        kind = next(
            (
                e.get("valueCode", "")
                for e in n.get("extension") or []
                if e.get("url") == NOTE_KIND_URL
            ),
            "",
        )
        author = n.get("authorReference") or {}
        notes.append(
            Note(
                str(kind),
                str(author.get("display") or n.get("authorString") or ""),
                str(author.get("reference", "")),
                str(n.get("time", "")),
                str(n.get("text", "")),
            )
        )
    authored = parse_instant(task.get("authoredOn")) or clock.now()
    deadline = parse_instant(((task.get("restriction") or {}).get("period") or {}).get("end"))
    if deadline is None and deadline_days is not None:
        deadline = authored + dt.timedelta(days=deadline_days)
    owner = task.get("owner") or {}
    patient = task.get("for") or {}
    status = status_of(task)
    return Report(
        id=str(task.get("id", "")),
        version=int((task.get("meta") or {}).get("versionId", "1") or 1),
        patient_id=ref_id(_ref(patient)),
        patient_name=str(patient.get("display", "")),
        requester=_ref(task.get("requester")),
        owner_ref=_ref(owner),
        owner_name=str(owner.get("display", "")),
        task_status=str(task.get("status", "")),
        status=status,
        problem=problem,
        correct_value=correct,
        comment=comment,
        entries=entries,
        included=included,
        attachments=attachments,
        notes=notes,
        authored=authored,
        deadline=deadline,
        decision=decision,
        reason=reason,
        invalid=invalid,
        provenance=provenance,
        moved=moved,
        previous=previous,
        escalated_to=escalated_to,
        decided_at=parse_instant((task.get("executionPeriod") or {}).get("end"))
        if status == Status.DECIDED
        else None,
        resource=task,
    )


def note(kind: NoteKind, author_ref: str, author: str, text: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "extension": [{"url": NOTE_KIND_URL, "valueCode": kind.value}],
        "time": instant(clock.now()),
        "text": text,
    }
    if author_ref:
        out["authorReference"] = {"reference": author_ref, "display": author or author_ref}
    else:
        out["authorString"] = author or "—"
    return out


def set_status(task: dict[str, Any], status: Status, decision: str = "") -> dict[str, Any]:
    out = dict(task)
    if status == Status.DECIDED:
        out["status"] = "rejected" if decision == Decision.REJECTED else "completed"
    else:
        out["status"] = TASK_STATUS[status]
    out["businessStatus"] = concept(STATUS_SYSTEM, status.value)
    out["lastModified"] = instant(clock.now())
    return out
