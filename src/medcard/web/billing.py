"""Pages for services under the OMS policy (issue 9).  Thin: parse, call ``medcard.billing``.

* ``/card/{pid}/services`` (+ ``.csv``, ``.pdf``): the patient's services by period with
  totals; ``/card/{pid}/services/{line}/dispute``: "I did not receive this service";
* ``/insurer/services``, ``/insurer/figures``: an insurer's staff (reviewers of an
  insurer organisation) — the lines billed to it and its monthly figures;
* ``/admin/prices``: a region admin's price list.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response

from medcard import records
from medcard.access.roles import Role
from medcard.audit.reports import human_name
from medcard.auth.accounts import Account
from medcard.billing import disputes, figures, listing, nomenclature, prices
from medcard.billing.model import BillingError
from medcard.corrections import service as corrections
from medcard.fhir.store.repository import ID, Repository
from medcard.web.deps import (
    current_account,
    engine_of,
    page_repository,
    require_csrf,
    settings_of,
)
from medcard.web.render import PageRoute, lang_of, page, redirect

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CurrentAccount = Annotated[Account, Depends(current_account)]
Csrf = Depends(require_csrf)
FormText = Annotated[str, Form()]


def _common(request: Request) -> dict[str, Any]:
    lang = lang_of(request)
    return {
        "rub": listing.rub,
        "fmt_date": lambda v: (records.ru_date(v) if lang == "ru" else v[:10]) if v else "—",
        "wide": True,
    }


@contextmanager
def _patient_repo(request: Request, account: Account, pid: str) -> Iterator[Repository]:
    """The signed-in patient acting for their own card or a dependant's; else not found."""
    if account.role != Role.PATIENT or not ID.fullmatch(pid):
        raise HTTPException(404)
    with page_repository(request, account, "services under the OMS policy") as repo:
        if pid not in repo.ctx.patient_ids:
            raise HTTPException(404)
        yield repo


def _entry_link(pid: str, ref: str) -> str:
    rtype, _, rid = ref.partition("/")
    return f"/card/{pid}/entry/{rtype}/{rid}" if rid else ""


def _listing(
    request: Request, account: Account, pid: str, start: str, end: str
) -> tuple[listing.Listing, listing.Period, str]:
    period = listing.Period.parse(start, end)
    with _patient_repo(request, account, pid) as repo:
        reports = corrections.patient_reports(repo, pid, settings_of(request))
        result = listing.patient_lines(repo, pid, period, reports)
        name = human_name(repo.read("Patient", pid).json())
    return result, period, name


@router.get("/card/{pid}/services")
def services_page(
    request: Request,
    account: CurrentAccount,
    pid: str,
    start: str = "",
    end: str = "",
) -> Response:
    try:
        result, period, name = _listing(request, account, pid, start, end)
    except BillingError as exc:
        result, period, name = _listing(request, account, pid, "", "")
        return page(
            request,
            "billing/services.html",
            422,
            pid=pid,
            data=result,
            period=period,
            name=name,
            error=exc.key,
            form={"start": start, "end": end},
            link=lambda ref: _entry_link(pid, ref),
            query="",
            **_common(request),
        )
    query = "&".join(f"{k}={v}" for k, v in (("start", start), ("end", end)) if v)
    return page(
        request,
        "billing/services.html",
        pid=pid,
        data=result,
        period=period,
        name=name,
        error="",
        form={"start": start, "end": end},
        link=lambda ref: _entry_link(pid, ref),
        query=query,
        **_common(request),
    )


def _download(body: bytes, media: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/card/{pid}/services.csv")
def services_csv(
    request: Request, account: CurrentAccount, pid: str, start: str = "", end: str = ""
) -> Response:
    try:
        result, _, _ = _listing(request, account, pid, start, end)
    except BillingError:
        raise HTTPException(400) from None
    return _download(listing.to_csv(result), "text/csv; charset=utf-8", "oms-services.csv")


@router.get("/card/{pid}/services.pdf")
def services_pdf(
    request: Request, account: CurrentAccount, pid: str, start: str = "", end: str = ""
) -> Response:
    try:
        result, period, name = _listing(request, account, pid, start, end)
    except BillingError:
        raise HTTPException(400) from None
    return _download(listing.to_pdf(result, name, period), "application/pdf", "oms-services.pdf")


def _dispute_form(
    request: Request,
    account: Account,
    pid: str,
    line_id: str,
    *,
    error: str = "",
    status_code: int = 200,
    comment: str = "",
) -> Response:
    with _patient_repo(request, account, pid) as repo:
        try:
            prepared = disputes.prepare(repo, pid, line_id)
        except BillingError as exc:
            return page(
                request,
                "billing/dispute.html",
                exc.status if exc.status in (404, 409) else 422,
                pid=pid,
                prepared=None,
                error=exc.key,
                comment="",
                routes={},
                chosen="",
                titles={},
                **_common(request),
            )
        routes = corrections.authorities_for(repo, pid)
        card = records.load_card(repo, pid)
    titles = {}
    for ref in prepared.entries:
        rtype, _, rid = ref.partition("/")
        entry = card.entry(rtype, rid)
        titles[ref] = f"{entry.title} ({entry.date})" if entry is not None else ref
    return page(
        request,
        "billing/dispute.html",
        status_code,
        pid=pid,
        prepared=prepared,
        error=error,
        comment=comment,
        routes=routes,
        chosen="insurer"
        if disputes.DEFAULT_AUTHORITY in routes
        else next((k.value for k in routes), ""),
        titles=titles,
        link=lambda ref: _entry_link(pid, ref),
        **_common(request),
    )


@router.get("/card/{pid}/services/{line_id}/dispute")
def dispute_form(request: Request, account: CurrentAccount, pid: str, line_id: str) -> Response:
    return _dispute_form(request, account, pid, line_id)


@router.post("/card/{pid}/services/{line_id}/dispute", dependencies=[Csrf])
def dispute_line(
    request: Request,
    account: CurrentAccount,
    pid: str,
    line_id: str,
    comment: FormText = "",
    authority: FormText = disputes.DEFAULT_AUTHORITY.value,
) -> Response:
    try:
        with _patient_repo(request, account, pid) as repo:
            task_id = disputes.dispute(
                repo,
                pid,
                line_id,
                comment=comment[:2000],
                authority=authority,
                settings=settings_of(request),
            )
    except BillingError as exc:
        return _dispute_form(
            request,
            account,
            pid,
            line_id,
            error=exc.key,
            status_code=exc.status if exc.status in (409, 422) else 422,
            comment=comment,
        )
    return redirect(f"/card/{pid}/reports/{task_id}?filed=1")


# -- the insurer ------------------------------------------------------------------------------


def _insurer(account: Account) -> None:
    if account.role != Role.REVIEWER or not account.organization_ref:
        raise HTTPException(403)


@router.get("/insurer/services")
def insurer_services(request: Request, account: CurrentAccount, month: str = "") -> Response:
    _insurer(account)
    month = month if len(month) == 7 and month[:4].isdigit() and month[5:].isdigit() else ""
    with page_repository(request, account, "insurer: billed services") as repo:
        try:
            lines = figures.billed_lines(repo, month)
        except BillingError:
            raise HTTPException(403) from None
    total = sum((x.amount for x in lines), start=Decimal(0))
    return page(
        request,
        "billing/insurer_services.html",
        lines=lines[:1000],
        shown=min(len(lines), 1000),
        count=len(lines),
        total=total,
        month=month,
        **_common(request),
    )


@router.get("/insurer/figures")
def insurer_figures(request: Request, account: CurrentAccount) -> Response:
    _insurer(account)
    with page_repository(request, account, "insurer: monthly figures") as repo:
        try:
            months = figures.monthly(repo, settings_of(request))
        except BillingError:
            raise HTTPException(403) from None
    return page(request, "billing/insurer_figures.html", months=months, **_common(request))


# -- the region admin's price list ------------------------------------------------------------


def _prices_page(
    request: Request,
    account: Account,
    *,
    error: str = "",
    saved: int = -1,
    status_code: int = 200,
) -> Response:
    if account.role != Role.REGION_ADMIN:
        raise HTTPException(403)
    if not account.region:
        return page(
            request,
            "billing/prices.html",
            403,
            region="",
            tariffs=[],
            error="bill_err_no_region",
            saved=-1,
            **_common(request),
        )
    tariffs = prices.price_list(engine_of(request), account.region).tariffs()
    return page(
        request,
        "billing/prices.html",
        status_code,
        region=account.region,
        tariffs=tariffs,
        local=nomenclature.CASE_SYSTEM,
        error=error,
        saved=saved,
        **_common(request),
    )


@router.get("/admin/prices")
def prices_page(request: Request, account: CurrentAccount, saved: int = -1) -> Response:
    return _prices_page(request, account, saved=saved)


@router.post("/admin/prices", dependencies=[Csrf])
async def save_prices(request: Request, account: CurrentAccount) -> Response:
    if account.role != Role.REGION_ADMIN:
        raise HTTPException(403)
    form = await request.form()
    changes = {
        str(k)[6:]: str(v)
        for k, v in form.multi_items()
        if str(k).startswith("price:") and isinstance(v, str)
    }
    if len(changes) > len(nomenclature.services()):
        raise HTTPException(400)
    from fastapi.concurrency import run_in_threadpool

    from medcard.web.deps import page_context

    ctx = page_context(request, account, "tariffs")
    try:
        changed = await run_in_threadpool(
            prices.set_tariffs, engine_of(request), ctx, account.region, changes
        )
    except BillingError as exc:
        return _prices_page(request, account, error=exc.key, status_code=exc.status)
    return redirect(f"/admin/prices?saved={len(changed)}")
