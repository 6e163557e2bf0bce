"""The extracts pages; ``router`` is what ``medcard.web.pages`` installs.

``/card/{pid}/extracts`` (the patient's list and the request form) and the downloads
read and write only through ``page_repository``: another patient's card or extract
gives the same "not found" page as a missing one.  ``/verify`` is public and shows
only what the verification record holds (no diagnoses, no identifiers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Final, cast

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from medcard.auth import ratelimit
from medcard.auth.accounts import Account
from medcard.extracts import services, verification
from medcard.extracts.model import ExtractInfo
from medcard.extracts.render import Period
from medcard.records import SECTION_BY_KEY, SECTIONS
from medcard.regions.features import Feature
from medcard.regions.gate import patient_region
from medcard.web.deps import (
    client_ip,
    current_account,
    current_session,
    engine_of,
    over_limit,
    page_repository,
    require_csrf,
    require_login_csrf,
    settings_of,
)
from medcard.web.deps import (
    services as app_services,
)
from medcard.web.regions import feature_off_page
from medcard.web.render import (
    PageRoute,
    error_page,
    lang_of,
    page,
    page_times,
    presession_token,
    redirect,
    set_presession_cookie,
    too_many,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CurrentAccount = Annotated[Account, Depends(current_account)]
MAX_UPLOAD: Final = 20 * 1024 * 1024
REFRESH_SECONDS: Final = 3


def _base_url(request: Request) -> str:
    """Where the QR code and the printed link point: the configured public URL, else ours."""
    configured = settings_of(request).base_url
    return (configured or str(request.base_url)).rstrip("/")


def _sections_text(item: ExtractInfo, lang: str) -> str:
    return ", ".join(SECTION_BY_KEY[s].title(lang) for s in item.sections)


def _period_text(start: str, end: str, lang: str) -> str:
    return Period(
        dt.date.fromisoformat(start[:10]) if start else None,
        dt.date.fromisoformat(end[:10]) if end else None,
    ).text(lang)


def _list_page(
    request: Request,
    account: Account,
    pid: str,
    *,
    status_code: int = 200,
    error: str = "",
    form: Mapping[str, object] | None = None,
) -> HTMLResponse:
    with page_repository(request, account, "extracts") as repo:
        try:
            items = services.list_extracts(repo, pid)
        except services.NotFound:
            raise HTTPException(404) from None
    off = _extracts_off(request, pid)
    if off is not None:
        return off
    lang = lang_of(request)
    signed = current_session(request)
    times = page_times(request, account, pid)
    response = page(
        request,
        "extracts/list.html",
        status_code,
        times=times,
        pid=pid,
        items=items,
        sections=SECTIONS,
        chosen=(form or {}).get("sections") or [s.key for s in SECTIONS],
        form=form or {},
        error=error,
        requested=request.query_params.get("requested", ""),
        csrf_token=signed.csrf,
        section_titles=lambda item: _sections_text(item, lang),
        period_text=lambda item: _period_text(item.start, item.end, lang),
        when=times.when,
        pretty=verification.pretty,
    )
    if any(i.building for i in items):
        # No JavaScript needed: the browser reloads the list until the build is done.
        response.headers["Refresh"] = str(REFRESH_SECONDS)
    return response


def _extracts_off(request: Request, pid: str) -> HTMLResponse | None:
    """The region's 403 page when extracts are turned off there (extracts already made
    stay downloadable: nothing the patient was given is taken away)."""
    region = patient_region(engine_of(request), pid)
    if region.config is not None and not region.enabled(Feature.EXTRACTS):
        return cast("HTMLResponse", feature_off_page(request, region, Feature.EXTRACTS))
    return None


@router.get("/card/{pid}/extracts")
def extracts_page(request: Request, pid: str, account: CurrentAccount) -> HTMLResponse:
    return _list_page(request, account, pid)


@router.post("/card/{pid}/extracts", dependencies=[Depends(require_csrf)], response_model=None)
def request_extract(
    request: Request,
    pid: str,
    account: CurrentAccount,
    sections: Annotated[list[str] | None, Form()] = None,
    start: Annotated[str, Form(max_length=32)] = "",
    end: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    lang = lang_of(request)
    form = {"sections": sections or [], "start": start, "end": end}
    try:
        req = services.parse_request(
            sections or [], start, end, lang, dt.datetime.now(dt.UTC).date()
        )
    except services.RequestError as exc:
        return _list_page(request, account, pid, status_code=400, error=exc.key, form=form)
    with page_repository(request, account, "extract request") as repo:
        if pid in repo.ctx.patient_ids and (off := _extracts_off(request, pid)) is not None:
            return off
        try:
            doc_id = services.request_extract(repo, pid, req, base_url=_base_url(request))
        except services.NotFound:
            raise HTTPException(404) from None
    return redirect(f"/card/{pid}/extracts?requested={doc_id}")


def _download(request: Request, account: Account, pid: str, xid: str, kind: str) -> Response:
    with page_repository(request, account, "extract download") as repo:
        try:
            file = services.extract_file(repo, pid, xid, kind)
        except services.NotFound:
            raise HTTPException(404) from None
        except services.NotReady:
            return error_page(request, 409, "extracts_not_ready")
    return Response(
        file.data,
        media_type=file.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/card/{pid}/extracts/{xid}.pdf", response_model=None)
def download_pdf(request: Request, pid: str, xid: str, account: CurrentAccount) -> Response:
    return _download(request, account, pid, xid, "pdf")


@router.get("/card/{pid}/extracts/{xid}.json", response_model=None)
def download_json(request: Request, pid: str, xid: str, account: CurrentAccount) -> Response:
    return _download(request, account, pid, xid, "json")


# -- public verification -------------------------------------------------------------------


def _verify_page(
    request: Request,
    check: verification.Check | None = None,
    *,
    code: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    token, new = presession_token(request)
    lang = lang_of(request)
    record = check.record if check else None
    response = page(
        request,
        "extracts/verify.html",
        status_code,
        check=check,
        record=record,
        code=code,
        error=error,
        csrf_token=token,
        # a public page: no patient to take a zone from, so the platform's (named)
        issued=page_times(request).when(record.issued) if record else "",
        sections_text=(
            ", ".join(SECTION_BY_KEY[s].title(lang) for s in record.sections if s in SECTION_BY_KEY)
            if record
            else ""
        ),
        period=_period_text(record.start, record.end, lang) if record else "",
        pretty=verification.pretty,
    )
    if new:
        set_presession_cookie(request, response, token)
    return response


def _check(request: Request, code: str, data: bytes | None = None) -> verification.Check:
    return services.check(engine_of(request), app_services(request).issuer.key, code, data)


def _limited(request: Request) -> HTMLResponse | None:
    """Checking codes is rate-limited per address: codes must not be guessable by volume."""
    hit = over_limit(request, (ratelimit.VERIFY_IP, client_ip(request)))
    return too_many(request, hit.retry_after) if hit is not None else None


@router.get("/verify")
def verify_form(request: Request, code: str = "") -> HTMLResponse:
    if not code.strip():
        return _verify_page(request)
    if (refused := _limited(request)) is not None:
        return refused
    return _verify_page(request, _check(request, code[:64]), code=code[:64])


@router.get("/verify/{code}")
def verify_code(request: Request, code: str) -> HTMLResponse:
    if (refused := _limited(request)) is not None:
        return refused
    return _verify_page(request, _check(request, code[:64]), code=code[:64])


@router.post("/verify", dependencies=[Depends(require_login_csrf)])
async def verify_file(
    request: Request, file: Annotated[UploadFile | None, File()] = None
) -> HTMLResponse:
    if (refused := await run_in_threadpool(_limited, request)) is not None:
        return refused
    if file is None or not file.filename:
        return _verify_page(request, error="verify_file_missing", status_code=400)
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return _verify_page(request, error="verify_file_too_big", status_code=413)
    if not data:
        return _verify_page(request, error="verify_file_missing", status_code=400)
    check = await run_in_threadpool(_check, request, "", data)
    return _verify_page(request, check, code=check.code)
