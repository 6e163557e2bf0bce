"""Pages for errors in the card (issue 7): the patient's reports, the reviewer's desk and
the author clinician's corrections.  Thin: parse the form, call ``medcard.corrections``,
render.  Every refusal is a page in the reader's language with the reason, and nothing
changes when a form is refused.

* ``/card/{pid}/reports`` (+ ``/new?entry=Immunization/x&entry=...``, ``/{task}``): the
  patient files, follows, answers and escalates;
* ``/review`` (+ ``/figures``, ``/{task}``): an authority's queue, overdue first, the
  disputed entries only, questions and the decision;
* ``/workspace/corrections``: corrections to my entries and questions to my organisation.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Final

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)

from medcard import records
from medcard.access.roles import Role
from medcard.auth.accounts import Account
from medcard.corrections import service
from medcard.corrections.acting import ReportError
from medcard.corrections.attachments import MAX_BYTES, Upload
from medcard.corrections.authorities import AuthorityType
from medcard.corrections.checks import split_ref
from medcard.corrections.model import Action, Decision, Problem, Report, ref_id
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import ID, Repository
from medcard.web.deps import current_account, page_repository, require_csrf, settings_of
from medcard.web.render import PageRoute, lang_of, page, redirect

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CurrentAccount = Annotated[Account, Depends(current_account)]
Csrf = Depends(require_csrf)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
MAX_FORM_ENTRIES: Final = 50


def _date(iso: str, lang: str) -> str:
    if not iso:
        return "—"
    return records.ru_date(iso) if lang == "ru" else iso[:10]


def _common(request: Request) -> dict[str, Any]:
    lang = lang_of(request)
    return {
        "fmt_date": lambda v: _date(v.isoformat() if hasattr(v, "isoformat") else str(v), lang),
        "authority_types": list(AuthorityType),
        "problems": list(Problem),
        "decisions": list(Decision),
        "actions": list(Action),
        "wide": True,
    }


def _refusal(exc: FhirError) -> str:
    return exc.key if isinstance(exc, ReportError) else "corr_err_generic"


# -- the patient ----------------------------------------------------------------------------


@contextmanager
def _patient_repo(request: Request, account: Account, pid: str) -> Iterator[Repository]:
    """The signed-in patient acting for their own card or a dependant's; else not found."""
    if account.role != Role.PATIENT:
        raise HTTPException(404)
    if not ID.fullmatch(pid):
        raise HTTPException(404)
    with page_repository(request, account, "corrections") as repo:
        if pid not in repo.ctx.patient_ids:
            raise HTTPException(404)
        yield repo


@router.get("/card/{pid}/reports")
def my_reports(request: Request, account: CurrentAccount, pid: str) -> Response:
    settings = settings_of(request)
    with _patient_repo(request, account, pid) as repo:
        reports = service.patient_reports(repo, pid, settings)
    return page(
        request, "corrections/patient_list.html", pid=pid, reports=reports, **_common(request)
    )


@router.get("/card/{pid}/reports/new")
def new_report(
    request: Request,
    account: CurrentAccount,
    pid: str,
    entry: Annotated[list[str], Query(max_length=MAX_FORM_ENTRIES)] = [],  # noqa: B006 - FastAPI reads it
) -> Response:
    return _new_form(request, account, pid, entry)


def _new_form(
    request: Request,
    account: Account,
    pid: str,
    chosen: list[str],
    *,
    error: str = "",
    status_code: int = 200,
    form: dict[str, Any] | None = None,
) -> Response:
    with _patient_repo(request, account, pid) as repo:
        card = records.load_card(repo, pid)
        routes = service.authorities_for(repo, pid)
    entries = []
    for ref in dict.fromkeys(chosen):
        parsed = split_ref(ref)
        found = card.entry(*parsed) if parsed else None
        if found is not None:
            entries.append(found)
    candidates = [e for e in card.listed() if e.ref not in {x.ref for x in entries}][:200]
    return page(
        request,
        "corrections/new.html",
        status_code,
        pid=pid,
        entries=entries,
        candidates=candidates,
        routes=routes,
        error=error,
        form=form or {"problem": "", "authority": AuthorityType.CLINIC.value},
        max_mib=MAX_BYTES // 2**20,
        **_common(request),
    )


@router.post("/card/{pid}/reports", dependencies=[Csrf])
async def file_report(
    request: Request,
    account: CurrentAccount,
    pid: str,
    entry: FormList = [],  # noqa: B006
    problem: FormText = "",
    correct_value: FormText = "",
    comment: FormText = "",
    authority: FormText = "clinic",
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006
) -> Response:
    uploads = []
    for f in files[:10]:
        data = await f.read(MAX_BYTES + 1)
        uploads.append(Upload(f.filename or "", f.content_type or "", data))
    from fastapi.concurrency import run_in_threadpool

    return await run_in_threadpool(
        _file_report,
        request,
        account,
        pid,
        entry,
        problem,
        correct_value,
        comment,
        authority,
        uploads,
    )


def _file_report(
    request: Request,
    account: Account,
    pid: str,
    entry: list[str],
    problem: str,
    correct_value: str,
    comment: str,
    authority: str,
    uploads: list[Upload],
) -> Response:
    entries = entry[:MAX_FORM_ENTRIES]
    try:
        with _patient_repo(request, account, pid) as repo:
            task_id = service.file_report(
                repo,
                service.NewReport(
                    pid, entries, problem, authority, correct_value, comment, uploads
                ),
                settings_of(request),
            )
    except ReportError as exc:
        form = {
            "problem": problem,
            "correct_value": correct_value,
            "comment": comment,
            "authority": authority,
        }
        status = exc.status if exc.status in (409, 422) else 422
        return _new_form(
            request, account, pid, entries, error=_refusal(exc), status_code=status, form=form
        )
    return redirect(f"/card/{pid}/reports/{task_id}?filed=1")


def _patient_report(
    request: Request, account: Account, pid: str, tid: str
) -> tuple[Report, list[service.EntryView], dict[Any, Any]]:
    with _patient_repo(request, account, pid) as repo:
        try:
            report = service.load_report(repo, tid, settings_of(request))
        except ReportError:
            raise HTTPException(404) from None
        if report.patient_id != pid:
            raise HTTPException(404)
        views = service.describe(repo, report)
        routes = service.authorities_for(repo, pid)
    return report, views, routes


@router.get("/card/{pid}/reports/{tid}")
def patient_report(request: Request, account: CurrentAccount, pid: str, tid: str) -> Response:
    return _patient_page(request, account, pid, tid)


def _patient_page(
    request: Request,
    account: Account,
    pid: str,
    tid: str,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    report, views, routes = _patient_report(request, account, pid, tid)
    return page(
        request,
        "corrections/patient_report.html",
        status_code,
        pid=pid,
        report=report,
        views=views,
        routes=routes,
        error=error,
        filed=request.query_params.get("filed") == "1",
        **_common(request),
    )


@router.post("/card/{pid}/reports/{tid}/answer", dependencies=[Csrf])
def patient_answer(
    request: Request, account: CurrentAccount, pid: str, tid: str, text: FormText = ""
) -> Response:
    try:
        with _patient_repo(request, account, pid) as repo:
            service.answer(repo, tid, text, account.display_name, settings_of(request))
    except ReportError as exc:
        if exc.status == 404:
            raise HTTPException(404) from None
        return _patient_page(
            request, account, pid, tid, error=_refusal(exc), status_code=exc.status
        )
    return redirect(f"/card/{pid}/reports/{tid}")


@router.post("/card/{pid}/reports/{tid}/escalate", dependencies=[Csrf])
def patient_escalate(
    request: Request, account: CurrentAccount, pid: str, tid: str, authority: FormText = ""
) -> Response:
    try:
        with _patient_repo(request, account, pid) as repo:
            new_id = service.escalate(repo, tid, authority, settings_of(request))
    except ReportError as exc:
        if exc.status == 404:
            raise HTTPException(404) from None
        return _patient_page(
            request, account, pid, tid, error=_refusal(exc), status_code=exc.status
        )
    return redirect(f"/card/{pid}/reports/{new_id}?filed=1")


@router.get("/card/{pid}/reports/{tid}/files/{bid}")
def patient_file(
    request: Request, account: CurrentAccount, pid: str, tid: str, bid: str
) -> Response:
    report, _, _ = _patient_report(request, account, pid, tid)
    with _patient_repo(request, account, pid) as repo:
        return _file(repo, report, bid)


def _file(repo: Repository, report: Report, bid: str) -> Response:
    """A file attached to the report, read through the caller's gate."""
    att = next((a for a in report.attachments if a.ref == f"Binary/{bid}"), None)
    if att is None or not ID.fullmatch(bid):
        raise HTTPException(404)
    try:
        binary = repo.read("Binary", bid).json()
        data = base64.b64decode(binary.get("data", ""), validate=True)
    except (FhirError, binascii.Error, ValueError):
        raise HTTPException(404) from None
    name = att.title.encode("ascii", "replace").decode().replace('"', "")
    return Response(
        data,
        media_type=str(binary.get("contentType") or "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{name or "file"}"'},
    )


# -- the reviewer's desk --------------------------------------------------------------------


def _reviewer(account: Account) -> None:
    if account.role != Role.REVIEWER:
        raise HTTPException(403)


@router.get("/review")
def review_queue(request: Request, account: CurrentAccount) -> Response:
    _reviewer(account)
    with page_repository(request, account, "corrections review") as repo:
        reports = service.queue(repo, settings_of(request))
    show = request.query_params.get("show", "open")
    shown = [r for r in reports if r.open] if show == "open" else reports
    if show == "overdue":
        shown = [r for r in reports if r.overdue]
    return page(
        request,
        "corrections/queue.html",
        reports=shown,
        show=show,
        overdue=sum(1 for r in reports if r.overdue),
        open_count=sum(1 for r in reports if r.open),
        total=len(reports),
        **_common(request),
    )


@router.get("/review/figures")
def review_figures(request: Request, account: CurrentAccount) -> Response:
    _reviewer(account)
    with page_repository(request, account, "corrections figures") as repo:
        months = service.figures(service.queue(repo, settings_of(request)))
    return page(request, "corrections/figures.html", months=months, **_common(request))


def _review_page(
    request: Request, account: Account, tid: str, *, error: str = "", status_code: int = 200
) -> Response:
    _reviewer(account)
    with page_repository(request, account, "corrections review") as repo:
        try:
            report = service.reviewable(repo, tid, settings_of(request))
        except ReportError:
            raise HTTPException(404) from None
        views = service.describe(repo, report, report.all_entries)
        disputed = []
        for ref in report.all_entries:
            try:
                stored = repo.read(*ref.split("/", 1))
            except FhirError:
                continue
            disputed.append(stored.json())
        card = records.build_card(report.patient_id, {}, disputed)
    lang = lang_of(request)
    return page(
        request,
        "corrections/review.html",
        status_code,
        report=report,
        views=views,
        entries={e.ref: e for e in card.entries},
        label=lambda key: records.label(key, lang),
        value_text=lambda v: records.value_text(v, lang),
        error=error,
        **_common(request),
    )


@router.get("/review/{tid}")
def review_report(request: Request, account: CurrentAccount, tid: str) -> Response:
    return _review_page(request, account, tid)


@router.get("/review/{tid}/files/{bid}")
def review_file(request: Request, account: CurrentAccount, tid: str, bid: str) -> Response:
    _reviewer(account)
    with page_repository(request, account, "corrections review") as repo:
        try:
            report = service.reviewable(repo, tid, settings_of(request))
        except ReportError:
            raise HTTPException(404) from None
        return _file(repo, report, bid)


def _review_action(request: Request, account: Account, tid: str, act: Any) -> Response:
    _reviewer(account)
    try:
        with page_repository(request, account, "corrections review") as repo:
            act(repo)
    except ReportError as exc:
        if exc.status == 404:
            raise HTTPException(404) from None
        return _review_page(request, account, tid, error=_refusal(exc), status_code=exc.status)
    return redirect(f"/review/{tid}")


@router.post("/review/{tid}/start", dependencies=[Csrf])
def review_start(request: Request, account: CurrentAccount, tid: str) -> Response:
    return _review_action(
        request, account, tid, lambda repo: service.start_review(repo, tid, settings_of(request))
    )


@router.post("/review/{tid}/ask", dependencies=[Csrf])
def review_ask(
    request: Request, account: CurrentAccount, tid: str, to: FormText = "", question: FormText = ""
) -> Response:
    return _review_action(
        request,
        account,
        tid,
        lambda repo: service.ask(
            repo, tid, to, question, account.display_name, settings_of(request)
        ),
    )


@router.post("/review/{tid}/decide", dependencies=[Csrf])
async def review_decide(request: Request, account: CurrentAccount, tid: str) -> Response:
    form = await request.form()
    invalid = [str(v) for v in form.getlist("invalid")][:MAX_FORM_ENTRIES]
    actions = {
        str(k)[len("action:") :]: str(v)
        for k, v in form.multi_items()
        if str(k).startswith("action:")
    }
    move_to = {
        str(k)[len("snils:") :]: str(v)
        for k, v in form.multi_items()
        if str(k).startswith("snils:")
    }
    ruling = service.Ruling(
        str(form.get("decision", "")), str(form.get("reason", "")), invalid, actions, move_to
    )
    from fastapi.concurrency import run_in_threadpool

    return await run_in_threadpool(
        _review_action,
        request,
        account,
        tid,
        lambda repo: service.decide(repo, tid, ruling, account.display_name, settings_of(request)),
    )


# -- the author clinician -------------------------------------------------------------------


@router.get("/workspace/corrections")
def my_corrections(request: Request, account: CurrentAccount) -> Response:
    return _author_page(request, account)


def _author_page(
    request: Request, account: Account, *, error: str = "", status_code: int = 200
) -> Response:
    if account.role != Role.PRACTITIONER:
        raise HTTPException(403)
    with page_repository(request, account, "corrections to my entries") as repo:
        notices = service.author_notices(repo)
    return page(
        request,
        "corrections/author.html",
        status_code,
        notices=notices,
        error=error,
        ref_id=ref_id,
        **_common(request),
    )


@router.post("/workspace/corrections/{tid}/answer", dependencies=[Csrf])
def author_answer(
    request: Request, account: CurrentAccount, tid: str, text: FormText = ""
) -> Response:
    if account.role != Role.PRACTITIONER:
        raise HTTPException(403)
    try:
        with page_repository(request, account, "corrections answer") as repo:
            service.answer(repo, tid, text, account.display_name, settings_of(request))
    except ReportError as exc:
        if exc.status == 404:
            raise HTTPException(404) from None
        return _author_page(request, account, error=_refusal(exc), status_code=exc.status)
    return redirect("/workspace/corrections?answered=1")
