"""Reports of errors in the card: filing, review, decision, escalation and the views.

Every function takes the caller's repository (bound to their access context by the page
or the API) and reads through its gate first: a patient files only against entries they
can read in a card they may act for; a reviewer reaches only reports owned by their
authority (and only the entries those reports dispute).  Changes are then written by
the service on the caller's behalf (``acting``), one transaction each.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from medcard import clock
from medcard.access.roles import Role
from medcard.audit.reports import human_name
from medcard.config import Settings
from medcard.corrections import attachments, effect
from medcard.corrections.acting import FILING, ReportError, acting, reader
from medcard.corrections.authorities import (
    Authority,
    AuthorityType,
    authority_of,
    deadline_days,
    route,
)
from medcard.corrections.checks import check_new_report, load_entry, refuse_disputed_twice
from medcard.corrections.model import (
    COMMUNICATION_SYSTEM,
    CORRECTION,
    DECISION_SYSTEM,
    PROBLEM_SYSTEM,
    STATUS_SYSTEM,
    TASK_TYPE_SYSTEM,
    Action,
    Decision,
    NoteKind,
    Problem,
    Report,
    Status,
    concept,
    input_item,
    instant,
    is_correction,
    note,
    output_item,
    read_report,
    ref_id,
    set_status,
)
from medcard.db.locks import FILING_LOCKS, try_locks
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import ID, Repository
from medcard.identifiers import SNILS_SYSTEM, IdentifierError, normalize_snils

MAX_TEXT: Final = 4000


def _text(value: str, key: str, *, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ReportError(422, key, "This text is required")
    if len(text) > MAX_TEXT:
        raise ReportError(422, "corr_err_too_long", f"At most {MAX_TEXT} characters")
    return text


def _days(settings: Settings | None, report_owner: Authority | None) -> int:
    kind = report_owner.type if report_owner is not None else AuthorityType.CLINIC
    return deadline_days(settings, kind)


# -- reading ------------------------------------------------------------------------------


def load_report(repo: Repository, task_id: str, settings: Settings | None = None) -> Report:
    """A report the caller may see (through the gate); not found otherwise."""
    if not ID.fullmatch(task_id):
        raise ReportError(404, "corr_err_not_found", "No such report")
    try:
        task = repo.read("Task", task_id).json()
    except FhirError:
        raise ReportError(404, "corr_err_not_found", f"Task/{task_id} is not known") from None
    if not is_correction(task):
        raise ReportError(404, "corr_err_not_found", f"Task/{task_id} is not a correction report")
    return _with_deadline(repo, read_report(task), settings)


def _with_deadline(repo: Repository, report: Report, settings: Settings | None) -> Report:
    if report.deadline is None:
        sys = reader(repo.engine, repo.ctx, "correction deadline")
        owner = authority_of(sys, report.owner_ref)
        report.deadline = report.authored + dt.timedelta(days=_days(settings, owner))
    return report


def _search_tasks(repo: Repository, params: list[tuple[str, str]]) -> list[Report]:
    req = parse(
        "Task",
        [("code", f"{TASK_TYPE_SYSTEM}|{CORRECTION}"), *params, ("_count", "1000")],
        max_count=1000,
    )
    return [read_report(m.json()) for m in repo.search(req).matches]


def patient_reports(
    repo: Repository, patient_id: str, settings: Settings | None = None
) -> list[Report]:
    reports = _search_tasks(repo, [("patient", f"Patient/{patient_id}")])
    for r in reports:
        _with_deadline(repo, r, settings)
    return sorted(reports, key=lambda r: r.authored, reverse=True)


def queue(repo: Repository, settings: Settings | None = None) -> list[Report]:
    """The reports owned by the reviewer's authorities: overdue first, then by deadline."""
    if repo.ctx.role != Role.REVIEWER or not repo.ctx.organizations:
        raise ReportError(
            403, "corr_err_not_reviewer", "Only reviewers of an authority have a queue"
        )
    owners = ",".join(f"Organization/{o}" for o in sorted(repo.ctx.organizations))
    reports = [_with_deadline(repo, r, settings) for r in _search_tasks(repo, [("owner", owners)])]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(
        reports,
        key=lambda r: (not r.open, not r.overdue, r.deadline or far, r.authored),
    )


@dataclass(frozen=True)
class Month:
    month: str  # 2026-11
    received: int
    decided: int
    accepted: int
    partly: int
    rejected: int
    escalated: int
    late: int  # decided after the deadline
    open_overdue: int
    mean_days: float | None


def figures(reports: list[Report]) -> list[Month]:
    """Per month of filing: what came in and what became of it."""
    months: dict[str, list[Report]] = {}
    for r in reports:
        months.setdefault(r.authored.strftime("%Y-%m"), []).append(r)
    out = []
    for month in sorted(months, reverse=True):
        rs = months[month]
        decided = [r for r in rs if r.status == Status.DECIDED]
        count = Counter(r.decision for r in decided)
        spans = [
            (r.decided_at - r.authored).total_seconds() / 86400 for r in decided if r.decided_at
        ]
        out.append(
            Month(
                month,
                len(rs),
                len(decided),
                count[Decision.ACCEPTED],
                count[Decision.PARTLY],
                count[Decision.REJECTED],
                sum(1 for r in rs if r.status == Status.ESCALATED),
                sum(
                    1 for r in decided if r.decided_at and r.deadline and r.decided_at > r.deadline
                ),
                sum(1 for r in rs if r.overdue),
                round(sum(spans) / len(spans), 1) if spans else None,
            )
        )
    return out


def reviewable(repo: Repository, task_id: str, settings: Settings | None = None) -> Report:
    """A report in the reviewer's own queue (another authority's looks like none at all)."""
    if repo.ctx.role != Role.REVIEWER:
        raise ReportError(403, "corr_err_not_reviewer", "Only an authority's reviewers decide")
    report = load_report(repo, task_id, settings)
    if ref_id(report.owner_ref) not in repo.ctx.organizations:
        raise ReportError(404, "corr_err_not_found", f"Task/{task_id} is not in your queue")
    return report


@dataclass(frozen=True)
class EntryView:
    ref: str
    title: str
    date: str
    withdrawn: bool
    purged: bool
    moved_to: str = ""


def describe(repo: Repository, report: Report, refs: list[str] | None = None) -> list[EntryView]:
    """What the disputed entries were, also once withdrawn (the report's own parties only:
    callers have already reached the report through the gate)."""
    from medcard.records import build_card

    sys = reader(repo.engine, repo.ctx, f"correction report {report.ref}")
    sys.include_hidden = True
    out = []
    moved = dict(zip(report.invalid, report.moved, strict=False)) if report.moved else {}
    try:
        for ref in refs if refs is not None else report.entries:
            rtype, rid = ref.split("/", 1)
            try:
                current = sys.read(rtype, rid)
            except FhirError:
                out.append(EntryView(ref, ref, "", True, True))
                continue
            res = current.json()
            purged = any(
                t.get("code") == "purged" for t in (res.get("meta") or {}).get("tag") or []
            )
            shown = res
            if current.hidden and not purged and current.version_id > 1:
                try:
                    shown = sys.vread(rtype, rid, str(current.version_id - 1)).json()
                except FhirError:
                    shown = res
            title, date = ref, ""
            if not purged:
                card = build_card(report.patient_id, {}, [shown])
                entry = card.entry(rtype, rid)
                if entry is not None:
                    title, date = entry.title, entry.date
            out.append(EntryView(ref, title, date, current.hidden, purged, moved.get(ref, "")))
    finally:
        sys.close()
    return out


# -- filing -------------------------------------------------------------------------------


@dataclass
class NewReport:
    patient_id: str
    entries: list[str]
    problem: str
    authority: str
    correct_value: str = ""
    comment: str = ""
    uploads: list[attachments.Upload] | None = None


def authorities_for(repo: Repository, patient_id: str) -> dict[AuthorityType, Authority]:
    """Where the caller may send a report about this card (they must see the Patient)."""
    try:
        patient = repo.read("Patient", patient_id).json()
    except FhirError:
        raise ReportError(
            404, "corr_err_no_patient", f"Patient/{patient_id} is not known"
        ) from None
    sys = reader(repo.engine, repo.ctx, "correction routing")
    try:
        return route(sys, patient)
    finally:
        sys.close()


def file_report(repo: Repository, new: NewReport, settings: Settings | None = None) -> str:
    """File a report; returns the Task id.  Nothing is written when anything is wrong."""
    pid = new.patient_id
    if repo.ctx.role == Role.PATIENT and pid not in repo.ctx.patient_ids:
        raise ReportError(404, "corr_err_no_patient", "Not a card you may act for")
    refs = list(dict.fromkeys(e.strip() for e in new.entries if e.strip()))
    if not refs:
        raise ReportError(422, "corr_err_no_entries", "Choose at least one entry of the card")
    try:
        problem = Problem(new.problem)
    except ValueError:
        raise ReportError(422, "corr_err_problem", "Say what is wrong") from None
    correct = _text(
        new.correct_value, "corr_err_correct_value", required=problem == Problem.WRONG_DATA
    )
    comment = _text(new.comment, "corr_err_comment")
    routes = authorities_for(repo, pid)
    try:
        authority = routes[AuthorityType(new.authority)]
    except (ValueError, KeyError):
        raise ReportError(422, "corr_err_authority", "Choose where to send the report") from None
    patient = repo.read("Patient", pid).json()
    included: list[str] = []
    for ref in refs:
        load_entry(repo, ref, pid)  # through the caller's gate: their card only
        for result in effect.cascade(repo, ref):
            if result not in refs and result not in included:
                try:
                    load_entry(repo, result, pid)
                except ReportError:
                    continue
                included.append(result)
    uploads = attachments.check(new.uploads or [])
    now = clock.now()
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "businessStatus": concept(STATUS_SYSTEM, Status.SUBMITTED.value),
        "intent": "order",
        "priority": "routine",
        "code": concept(TASK_TYPE_SYSTEM, CORRECTION, "Сообщение об ошибке в медицинской карте"),
        "description": "Сообщение об ошибке в медицинской карте",
        "for": {"reference": f"Patient/{pid}", "display": human_name(patient)},
        "authoredOn": instant(now),
        "lastModified": instant(now),
        "requester": {"reference": repo.ctx.actor}
        if repo.ctx.actor.startswith(
            ("Patient/", "Practitioner/", "RelatedPerson/", "Organization/")
        )
        else {"display": repo.ctx.actor},
        "owner": {"reference": authority.ref, "display": authority.name},
        "restriction": {
            "period": {
                "end": instant(now + dt.timedelta(days=deadline_days(settings, authority.type)))
            }
        },
        "input": [
            *(input_item("disputed-entry", valueReference={"reference": r}) for r in refs),
            *(input_item("included-entry", valueReference={"reference": r}) for r in included),
            input_item("problem", valueCodeableConcept=concept(PROBLEM_SYSTEM, problem.value)),
            *([input_item("correct-value", valueString=correct)] if correct else []),
            *([input_item("comment", valueString=comment)] if comment else []),
        ],
    }
    sys = reader(repo.engine, repo.ctx, "check correction report")
    check_new_report(sys, task)  # refused here with a clear message, before any write
    if uploads:
        # Files first, in their own transaction: the report's check must see them.
        with repo.unit_of_work():
            for u in uploads:
                stored = repo.create(attachments.binary(u, pid)).stored
                task["input"].append(
                    input_item(
                        "attachment",
                        valueReference={
                            "reference": f"Binary/{stored.id}",
                            "display": attachments.safe_name(u.filename),
                            "extension": [
                                {
                                    "url": "https://medcard.example/fhir/StructureDefinition/content-type",
                                    "valueCode": attachments.sniff(u.data),
                                },
                                {
                                    "url": "https://medcard.example/fhir/StructureDefinition/size",
                                    "valueInteger": len(u.data),
                                },
                            ],
                        },
                    )
                )
    # Two reports sent at the same moment (issue 14): while one is being filed, its
    # entries are locked (every process on PostgreSQL), so another report disputing
    # any of them at that moment is refused as a duplicate, and one filed after it
    # meets the first in the duplicate check, which runs again under the locks.
    with try_locks(repo.engine, FILING_LOCKS, [f"{pid}:{r}" for r in refs]) as ours:
        if not ours:
            raise ReportError(
                409, "corr_err_duplicate", "An entry of this report is being disputed right now"
            )
        refuse_disputed_twice(sys, task)
        filing = FILING.set(True)
        try:
            with repo.unit_of_work():
                return repo.create(task).stored.id
        finally:
            FILING.reset(filing)


# -- review -------------------------------------------------------------------------------


def _reviewer_name(repo: Repository) -> str:
    return repo.ctx.actor


def _save(repo: Repository, report: Report, task: dict[str, Any], purpose: str) -> None:
    """Write the next version of the report, refusing if someone else changed it first."""
    with acting(repo.engine, repo.ctx, purpose) as svc:
        _update_task(svc, report, task)


def _update_task(svc: Repository, report: Report, task: dict[str, Any]) -> None:
    try:
        svc.update("Task", report.id, task, if_match=f'W/"{report.version}"')
    except FhirError as exc:
        if exc.status == 412:
            raise ReportError(
                409, "corr_err_changed", "The report was changed meanwhile; open it again"
            ) from None
        raise


def start_review(repo: Repository, task_id: str, settings: Settings | None = None) -> Report:
    report = reviewable(repo, task_id, settings)
    if report.status != Status.SUBMITTED:
        raise ReportError(409, "corr_err_state", "The report is already in review or decided")
    task = set_status(report.resource, Status.IN_REVIEW)
    _save(repo, report, task, f"correction review {report.ref}")
    return report


def ask(
    repo: Repository,
    task_id: str,
    to: str,
    question: str,
    reviewer: str,
    settings: Settings | None = None,
) -> None:
    """Ask the patient or the author organisation; the report waits for the answer."""
    report = reviewable(repo, task_id, settings)
    if not report.open:
        raise ReportError(409, "corr_err_decided", "The report is already decided")
    text = _text(question, "corr_err_question", required=True)
    if to not in ("patient", "author"):
        raise ReportError(422, "corr_err_question_to", "Ask the patient or the author")
    kind = NoteKind.QUESTION_PATIENT if to == "patient" else NoteKind.QUESTION_AUTHOR
    task = set_status(report.resource, Status.INFO_REQUESTED)
    task["note"] = [
        *(task.get("note") or []),
        note(kind, report.owner_ref, reviewer or report.owner_name, text),
    ]
    with acting(repo.engine, repo.ctx, f"correction question {report.ref}") as svc:
        owner = authority_of(svc, report.owner_ref)
        if to == "author":
            orgs = effect.author_orgs(svc, report, _clinic_of(svc, report.patient_id))
            effect.question_to_authors(svc, report, orgs, owner.name if owner else "", text)
        _update_task(svc, report, task)


def _clinic_of(repo: Repository, patient_id: str) -> str:
    try:
        patient = repo.read("Patient", patient_id).json()
    except FhirError:
        return ""
    return str((patient.get("managingOrganization") or {}).get("reference", ""))


def answer(
    repo: Repository, task_id: str, text: str, author: str, settings: Settings | None = None
) -> None:
    """The patient (or the author organisation) answers the reviewer's question."""
    ctx = repo.ctx
    if ctx.role == Role.PATIENT:
        report = load_report(repo, task_id, settings)
        if report.patient_id not in ctx.patient_ids:
            raise ReportError(404, "corr_err_not_found", "No such report")
        author_ref = ctx.actor
    elif ctx.role == Role.PRACTITIONER:
        sys = reader(repo.engine, ctx, "correction answer")
        try:
            report = load_report(sys, task_id, settings)
            asked = effect.author_orgs(sys, report, _clinic_of(sys, report.patient_id))
        finally:
            sys.close()
        mine = {ref_id(o) for o in asked} & ctx.organizations
        if not mine:
            raise ReportError(404, "corr_err_not_found", "No question to your organisation")
        author_ref = ctx.actor
    else:
        raise ReportError(403, "corr_err_forbidden", "Patients and author clinicians answer")
    if report.status != Status.INFO_REQUESTED:
        raise ReportError(409, "corr_err_state", "Nobody is waiting for an answer to this report")
    body = _text(text, "corr_err_answer", required=True)
    task = set_status(report.resource, Status.IN_REVIEW)
    task["note"] = [*(task.get("note") or []), note(NoteKind.ANSWER, author_ref, author, body)]
    _save(repo, report, task, f"correction answer {report.ref}")


@dataclass(frozen=True)
class Ruling:
    decision: str
    reason: str
    invalid: list[str]
    actions: dict[str, str]  # entry ref -> Action value
    move_to: dict[str, str]  # entry ref -> SNILS of the right patient


def _patient_by_snils(repo: Repository, snils: str) -> str:
    try:
        digits = normalize_snils(snils)
    except IdentifierError:
        raise ReportError(
            422, "corr_err_move_target", "The SNILS of the right patient is not valid"
        ) from None
    found = repo.search(
        parse("Patient", [("identifier", f"{SNILS_SYSTEM}|{digits}"), ("_count", "2")])
    )
    if len(found.matches) != 1:
        found = repo.search(
            parse(
                "Patient",
                [
                    (
                        "identifier",
                        f"{SNILS_SYSTEM}|{digits[:3]}-{digits[3:6]}-{digits[6:9]} {digits[9:]}",
                    ),
                    ("_count", "2"),
                ],
            )
        )
    if len(found.matches) != 1:
        raise ReportError(422, "corr_err_move_target", "No single patient has this SNILS")
    return found.matches[0].id


def decide(
    repo: Repository, task_id: str, ruling: Ruling, reviewer: str, settings: Settings | None = None
) -> Report:
    """Decide a report; an accepted one takes its invalid entries out of the card."""
    report = reviewable(repo, task_id, settings)
    if not report.open:
        raise ReportError(409, "corr_err_decided", "The report is already decided")
    try:
        decision = Decision(ruling.decision)
    except ValueError:
        raise ReportError(422, "corr_err_decision", "Choose a decision") from None
    reason = _text(ruling.reason, "corr_err_reason", required=decision != Decision.ACCEPTED)
    chosen = list(dict.fromkeys(ruling.invalid))
    if any(r not in report.entries for r in chosen):
        raise ReportError(422, "corr_err_invalid_entry", "Only disputed entries can be invalid")
    if decision == Decision.ACCEPTED:
        invalid = list(report.entries)
    elif decision == Decision.PARTLY:
        if not chosen or len(chosen) >= len(report.entries):
            raise ReportError(
                422, "corr_err_partly", "Partly accepted: mark some, not all, entries invalid"
            )
        invalid = chosen
    else:
        invalid = []
    actions: dict[str, Action] = {}
    for ref, value in ruling.actions.items():
        try:
            action = Action(value or Action.WITHDRAW.value)
        except ValueError:
            raise ReportError(422, "corr_err_action", "Unknown action") from None
        if action != Action.WITHDRAW:
            if ref not in invalid:
                raise ReportError(422, "corr_err_action", "Move or purge only invalid entries")
            actions[ref] = action
    reason = reason or "Сведения признаны ошибочными"
    with acting(repo.engine, repo.ctx, f"correction decision {report.ref}") as svc:
        moves = {
            ref: _patient_by_snils(svc, ruling.move_to.get(ref, ""))
            for ref, a in actions.items()
            if a == Action.MOVE
        }
        if report.patient_id in moves.values():
            raise ReportError(422, "corr_err_move_target", "The right patient is another person")
        owner = authority_of(svc, report.owner_ref)
        owner_name = owner.name if owner else report.owner_name
        outcome = effect.apply(
            svc,
            report,
            invalid,
            reason=reason,
            authority_name=owner_name,
            reviewer_name=reviewer,
            moves=moves,
            purges={r for r, a in actions.items() if a == Action.PURGE},
            fallback_org=_clinic_of(svc, report.patient_id),
        )
        task = set_status(report.resource, Status.DECIDED, decision.value)
        task["executionPeriod"] = {
            **(task.get("executionPeriod") or {}),
            "end": instant(clock.now()),
        }
        if decision == Decision.REJECTED:
            task["statusReason"] = {"text": reason[:1000]}
        task["output"] = [
            output_item("decision", valueCodeableConcept=concept(DECISION_SYSTEM, decision.value)),
            output_item("reason", valueString=reason),
            *(output_item("invalid-entry", valueReference={"reference": r}) for r in invalid),
            *(
                [output_item("provenance", valueReference={"reference": outcome.provenance})]
                if outcome.provenance
                else []
            ),
            *(
                output_item("moved-to", valueReference={"reference": outcome.moved[r]})
                for r in invalid
                if r in outcome.moved
            ),
        ]
        task["note"] = [
            *(task.get("note") or []),
            note(NoteKind.DECISION, report.owner_ref, reviewer or owner_name, reason),
        ]
        _update_task(svc, report, task)
    return report


# -- escalation ---------------------------------------------------------------------------


def escalate(
    repo: Repository, task_id: str, authority: str, settings: Settings | None = None
) -> str:
    """Send a rejected or overdue report to another authority, with its history."""
    report = load_report(repo, task_id, settings)
    if repo.ctx.role == Role.PATIENT and report.patient_id not in repo.ctx.patient_ids:
        raise ReportError(404, "corr_err_not_found", "No such report")
    if not report.escalable:
        raise ReportError(
            409, "corr_err_not_escalable", "Only a rejected or overdue report can be escalated"
        )
    routes = authorities_for(repo, report.patient_id)
    try:
        target = routes[AuthorityType(authority)]
    except (ValueError, KeyError):
        raise ReportError(422, "corr_err_authority", "Choose where to send the report") from None
    if target.ref == report.owner_ref:
        raise ReportError(422, "corr_err_same_authority", "Choose another authority")
    now = clock.now()
    history = [
        note(
            NoteKind.HISTORY,
            n.author_ref,
            n.author,
            f"[{report.owner_name}, {n.time[:10]}] {n.text}",
        )
        for n in report.notes
    ]
    carried = [
        i
        for i in report.resource.get("input") or []
        if not any(
            c.get("code") == "previous-report" for c in (i.get("type") or {}).get("coding") or []
        )
    ]
    new_task: dict[str, Any] = {
        **{
            k: v
            for k, v in report.resource.items()
            if k not in ("id", "meta", "output", "note", "statusReason", "executionPeriod")
        },
        "status": "requested",
        "businessStatus": concept(STATUS_SYSTEM, Status.SUBMITTED.value),
        "authoredOn": instant(now),
        "lastModified": instant(now),
        "owner": {"reference": target.ref, "display": target.name},
        "restriction": {
            "period": {
                "end": instant(now + dt.timedelta(days=deadline_days(settings, target.type)))
            }
        },
        "input": [
            *carried,
            input_item("previous-report", valueReference={"reference": report.ref}),
        ],
        "note": [
            *history,
            note(
                NoteKind.ESCALATION,
                repo.ctx.actor if repo.ctx.actor.startswith("Patient/") else "",
                "",
                f"Обращение передано из «{report.owner_name}»: "
                + ("отказ" if report.decision == Decision.REJECTED else "срок ответа истёк"),
            ),
        ],
    }
    with acting(repo.engine, repo.ctx, f"correction escalation {report.ref}") as svc:
        new_id = svc.create(new_task).stored.id
        if report.open:
            old = set_status(report.resource, Status.ESCALATED)
            old["output"] = [
                *(old.get("output") or []),
                output_item("escalated-to", valueReference={"reference": f"Task/{new_id}"}),
            ]
            _update_task(svc, report, old)
    return new_id


# -- the author clinician's view --------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    id: str
    kind: str  # correction | correction-question
    sent: str
    sender: str
    text: str
    task_id: str
    entries: list[str]
    waiting: bool  # a question still waiting for an answer


def author_notices(repo: Repository) -> list[Notice]:
    """Corrections to entries the clinician (or their organisation) made, and questions."""
    ctx = repo.ctx
    recipients = [ctx.actor] if ctx.actor.startswith("Practitioner/") else []
    recipients += [f"Organization/{o}" for o in sorted(ctx.organizations)]
    if not recipients:
        return []
    sys = reader(repo.engine, ctx, "corrections to my entries")
    try:
        found = sys.search(
            parse(
                "Communication",
                [
                    ("recipient", ",".join(recipients)),
                    (
                        "category",
                        f"{COMMUNICATION_SYSTEM}|correction,{COMMUNICATION_SYSTEM}|correction-question",
                    ),
                    ("_sort", "-sent"),
                    ("_count", "200"),
                ],
                max_count=200,
            )
        ).matches
        out = []
        for m in found:
            c = m.json()
            kind = next(
                (
                    str(cd.get("code"))
                    for cat in c.get("category") or []
                    for cd in cat.get("coding") or []
                ),
                "",
            )
            task_id = ref_id(str(((c.get("basedOn") or [{}])[0]).get("reference", "")))
            waiting = False
            if kind == "correction-question" and task_id:
                try:
                    waiting = (
                        read_report(sys.read("Task", task_id).json()).status
                        == Status.INFO_REQUESTED
                    )
                except FhirError:
                    waiting = False
            out.append(
                Notice(
                    m.id,
                    kind,
                    str(c.get("sent", "")),
                    str((c.get("sender") or {}).get("display", "")),
                    " ".join(str(p.get("contentString", "")) for p in c.get("payload") or []),
                    task_id,
                    [str(a.get("reference", "")) for a in c.get("about") or []],
                    waiting,
                )
            )
        return out
    finally:
        sys.close()
