"""Family history pages: ``/card/{pid}/family``.

The patient lists their close blood relatives and their illnesses (ICD-10, with a
type-ahead served by ``/card/{pid}/family/icd10`` to a small static script; without
JavaScript, an unknown code is answered with the matching codes to choose from).  A
clinician sees the same list, each entry labelled "entered by the patient" or
"confirmed", and confirms an entry into the record with one button.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from medcard import clock
from medcard.access.roles import Role
from medcard.auth.accounts import Account
from medcard.family_history import icd10
from medcard.family_history.relatives import RELATIVES
from medcard.family_history.services import (
    MAX_CONDITIONS,
    FamilyError,
    IllnessInput,
    RelativeInput,
    add_entry,
    confirm_entry,
    list_entries,
    remove_entry,
)
from medcard.fhir.outcomes import FhirError
from medcard.regions.features import Feature
from medcard.regions.gate import FeatureDisabledError, require_feature
from medcard.web.deps import current_account, engine_of, page_repository, require_csrf
from medcard.web.diary import patient_name
from medcard.web.regions import feature_off_page
from medcard.web.render import PageRoute, error_page, lang_of, page, redirect

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CurrentAccount = Annotated[Account, Depends(current_account)]
FORM_ROWS = 3  # illness rows on the form (an entry holds up to MAX_CONDITIONS)


def _fail(request: Request, exc: FhirError) -> Response:
    if isinstance(exc, FeatureDisabledError):
        return feature_off_page(request, exc, exc.feature)
    if exc.status == 404:
        return error_page(request, 404, "not_found")
    return page(request, "diary/refused.html", exc.status, reason=exc.diagnostics)


def _view(
    request: Request,
    account: Account,
    pid: str,
    *,
    notice: str = "",
    error: str = "",
    error_params: dict[str, Any] | None = None,
    values: dict[str, str] | None = None,
    suggestions: list[tuple[str, str]] | None = None,
    status: int = 200,
) -> Response:
    lang = lang_of(request)
    with page_repository(request, account, "family history") as repo:
        try:
            patient = repo.read("Patient", pid).json()
            region = require_feature(engine_of(request), pid, Feature.FAMILY_HISTORY)
            entries = list_entries(repo, pid, lang)
        except FhirError as exc:
            return _fail(request, exc)
    confirmed = {e.confirmed_from for e in entries if e.confirmed_from}
    return page(
        request,
        "family/family.html",
        status,
        pid=pid,
        patient_name=patient_name(patient),
        entries=entries,
        confirmed=confirmed,
        relatives=RELATIVES,
        is_patient=account.role == Role.PATIENT,
        is_clinician=account.role == Role.PRACTITIONER,
        diary_on=region.enabled(Feature.DIARY),
        rows=range(1, FORM_ROWS + 1),
        notice=notice,
        error=error,
        error_params=error_params or {},
        values=values or {},
        suggestions=suggestions or [],
    )


@router.get("/card/{pid}/family")
def family_page(request: Request, pid: str, account: CurrentAccount, notice: str = "") -> Response:
    known = {"added": "family_added", "removed": "family_removed", "confirmed": "family_confirmed"}
    return _view(request, account, pid, notice=known.get(notice, ""))


@router.get("/card/{pid}/family/icd10")
def icd10_lookup(request: Request, pid: str, account: CurrentAccount, q: str = "") -> Response:
    """Type-ahead: JSON [{code, title}] for the static script that fills the datalist."""
    hits = icd10.search(q[:60], lang_of(request), limit=15) if len(q.strip()) >= 2 else []
    return JSONResponse([{"code": c, "title": t} for c, t in hits])


def _entry_of(form: dict[str, str]) -> RelativeInput:
    illnesses = []
    for n in range(1, MAX_CONDITIONS + 1):
        code = form.get(f"code_{n}", "").strip()
        if code:
            illnesses.append(
                IllnessInput(code, form.get(f"onset_{n}", ""), form.get("cause", "") == str(n))
            )
    return RelativeInput(
        relationship=form.get("relationship", ""),
        name=form.get("name", ""),
        deceased=form.get("living", "") == "deceased",
        death_age=form.get("death_age", ""),
        illnesses=tuple(illnesses),
        note=form.get("note", ""),
    )


@router.post("/card/{pid}/family", dependencies=[Depends(require_csrf)])
async def family_add(request: Request, pid: str, account: CurrentAccount) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    result: Response = await run_in_threadpool(_add, request, account, pid, form)
    return result


def _add(request: Request, account: Account, pid: str, form: dict[str, str]) -> Response:
    if account.role != Role.PATIENT:
        raise HTTPException(403)
    entry = _entry_of(form)
    with page_repository(request, account, "family history") as repo:
        try:
            repo.read("Patient", pid)
            require_feature(engine_of(request), pid, Feature.FAMILY_HISTORY)
            add_entry(repo, pid, entry, clock.now().date())
        except FamilyError as exc:
            suggestions = []
            if exc.key == "family_bad_code":
                n = int(str(exc.params.get("n", "1")))
                text = form.get(f"code_{n}", "")
                suggestions = icd10.search(text, lang_of(request)) or icd10.search(
                    str(exc.params.get("code", "")), lang_of(request)
                )
            return _view(
                request,
                account,
                pid,
                error=exc.key,
                error_params=exc.params,
                values=form,
                suggestions=suggestions,
                status=400,
            )
        except FhirError as exc:
            return _fail(request, exc)
    return redirect(f"/card/{pid}/family?notice=added")


@router.post("/card/{pid}/family/{entry_id}/delete", dependencies=[Depends(require_csrf)])
def family_remove(request: Request, pid: str, entry_id: str, account: CurrentAccount) -> Response:
    with page_repository(request, account, "family history") as repo:
        try:
            require_feature(engine_of(request), pid, Feature.FAMILY_HISTORY)
            stored = repo.read("FamilyMemberHistory", entry_id)
            if stored.patient_id != pid:
                raise HTTPException(404)
            remove_entry(repo, entry_id)
        except FhirError as exc:
            return _fail(request, exc)
    return redirect(f"/card/{pid}/family?notice=removed")


@router.post("/card/{pid}/family/{entry_id}/confirm", dependencies=[Depends(require_csrf)])
def family_confirm(request: Request, pid: str, entry_id: str, account: CurrentAccount) -> Response:
    if account.role != Role.PRACTITIONER:
        raise HTTPException(403)
    with page_repository(request, account, "family history") as repo:
        try:
            confirm_entry(repo, pid, entry_id, clock.now().date())
        except FamilyError as exc:
            return _view(request, account, pid, error=exc.key, status=400)
        except FhirError as exc:
            return _fail(request, exc)
    return redirect(f"/card/{pid}/family?notice=confirmed")
