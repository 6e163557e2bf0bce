"""The patient's medical card pages (``/card/...``).

Pages are thin: resolve who may look, read the card through ``page_repository`` (the
same gate and audit as the FHIR API), hand ``medcard.records`` objects to a template.
Another patient's card, entry or file looks exactly like one that does not exist.
Staff are sent to the workspace; a patient whose account has no card yet, to ``/access``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from markupsafe import Markup
from starlette.convertors import Convertor, register_url_convertor

from medcard import records, signing
from medcard.access.roles import Role
from medcard.audit import reports
from medcard.auth.accounts import Account
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository
from medcard.onboarding import card_gate
from medcard.records import Card, Entry
from medcard.records.sections import SECTIONS, entered_in_error
from medcard.regions.features import Feature
from medcard.regions.gate import patient_region
from medcard.ru_dates import Times
from medcard.web.audit_pages import Texts, entry_views, own_refs, page_links
from medcard.web.deps import current_account, engine_of, page_repository, settings_of
from medcard.web.render import PageRoute, lang_of, page, page_times, redirect

PAGE_SIZE: Final = 50
RESERVED: Final = ("extracts",)  # /card/{pid}/extracts belongs to the extracts pages
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


class _SectionKey(Convertor[str]):
    regex = "|".join(re.escape(s.key) for s in SECTIONS)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _NotReserved(Convertor[str]):
    """Any rest of a card URL except what other areas own (they install after us)."""

    regex = "(?!(?:" + "|".join(RESERVED) + r")(?:/|$)).+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("medcard_section", _SectionKey())
register_url_convertor("medcard_card_rest", _NotReserved())

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CurrentAccount = Annotated[Account, Depends(current_account)]
PageNo = Annotated[int, Query(alias="page", ge=1, le=100_000)]


class _Elsewhere(Exception):  # noqa: N818 - control flow: this person belongs elsewhere
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def _own_patient(account: Account) -> str:
    ref = account.fhir_ref
    return ref.split("/", 1)[1] if ref.startswith("Patient/") else ""


def _check_person(request: Request, account: Account) -> None:
    """Staff read cards in the workspace; a patient without a card (or, signed in
    through SSO, without consent yet) finishes getting access first."""
    if account.role is not Role.PATIENT:
        raise _Elsewhere("/workspace")
    away = card_gate(engine_of(request), account)
    if away is not None or not _own_patient(account):
        raise _Elsewhere(away or "/access")


@dataclass(frozen=True)
class Switch:
    """A card the signed-in patient may open: their own or a dependant's."""

    patient_id: str
    name: str
    own: bool


@contextmanager
def _reading(request: Request, account: Account, pid: str) -> Iterator[Repository]:
    """The signed-in patient's repository, or a not-found page for anything not theirs."""
    _check_person(request, account)
    if not _ID.fullmatch(pid):
        raise HTTPException(404)
    with page_repository(request, account) as repo:
        if pid not in repo.ctx.patient_ids:
            # Same answer as a card that does not exist; the gate records the refusal.
            with suppress(FhirError):
                repo.read("Patient", pid)
            raise HTTPException(404)
        try:
            yield repo
        except FhirError as exc:
            raise HTTPException(404 if exc.status in (403, 404, 410) else 400) from None


def _switches(repo: Repository, account: Account) -> list[Switch]:
    own = _own_patient(account)
    others = sorted(p for p in repo.ctx.patient_ids if p != own)
    if not others:
        return []
    out = [Switch(own, "", True)]
    for pid in others:
        try:
            res = repo.read("Patient", pid).json()
        except FhirError:
            continue
        out.append(Switch(pid, reports.human_name(res), False))
    return out


def _load(request: Request, account: Account, pid: str) -> tuple[Card, list[Switch]]:
    with _reading(request, account, pid) as repo:
        card = records.load_card(repo, pid)
        switches = _switches(repo, account)
    return card, switches


def _card_page(
    request: Request,
    template: str,
    card: Card,
    switches: list[Switch],
    current: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    lang = lang_of(request)
    region = patient_region(engine_of(request), card.patient_id)
    times = context.pop("times", None) or page_times(request, patient_id=card.patient_id)
    return page(
        request,
        template,
        status_code,
        times=times,
        card=card,
        pid=card.patient_id,
        has_diary=region.enabled(Feature.DIARY),
        has_family=region.enabled(Feature.FAMILY_HISTORY),
        switches=switches,
        current=current,
        sections=SECTIONS,
        counts=card.counts(),
        fmt_date=_date_formatter(times),
        label=lambda key: records.label(key, lang),
        value_text=lambda v: records.value_text(v, lang),
        section_title=lambda key: (
            records.SECTION_BY_KEY[key].title(lang) if key in records.SECTION_BY_KEY else key
        ),
        wide=True,
        **context,
    )


def _date_formatter(times: Times) -> Any:
    """``fmt_date(iso)``: the day (in the patient's zone when ``iso`` has a time);
    ``fmt_date(iso, time=True)``: the instant in that zone with the zone named."""

    def fmt(iso: str, *, time: bool = False) -> str:
        if not iso:
            return "—"
        return times.when(iso) if time else times.day(iso)

    return fmt


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int
    newer: str
    older: str


def _paged(request: Request, items: list[Entry], page_no: int) -> tuple[list[Entry], Pager]:
    total = len(items)
    pages = max(1, -(-total // PAGE_SIZE))
    page_no = min(page_no, pages)
    params = {k: v for k, v in request.query_params.items() if k not in ("page", "lang")}

    def url(n: int) -> str:
        return f"{request.url.path}?{urlencode({**params, 'page': str(n)})}"

    pager = Pager(
        page_no,
        pages,
        total,
        url(page_no - 1) if page_no > 1 else "",
        url(page_no + 1) if page_no < pages else "",
    )
    start = (page_no - 1) * PAGE_SIZE
    return items[start : start + PAGE_SIZE], pager


# -- pages -------------------------------------------------------------------------------


@router.get("/card")
def my_card(request: Request, account: CurrentAccount) -> Response:
    try:
        _check_person(request, account)
    except _Elsewhere as away:
        return redirect(away.url)
    return redirect(f"/card/{_own_patient(account)}")


def _guarded(request: Request, account: Account, pid: str) -> tuple[Card, list[Switch]] | Response:
    try:
        return _load(request, account, pid)
    except _Elsewhere as away:
        return redirect(away.url)


@router.get("/card/{pid}")
def overview(request: Request, account: CurrentAccount, pid: str) -> Response:
    loaded = _guarded(request, account, pid)
    if isinstance(loaded, Response):
        return loaded
    card, switches = loaded
    doses = records.calendar(card)
    return _card_page(
        request,
        "portal/overview.html",
        card,
        switches,
        "overview",
        ov=card.overview(),
        vaccines_due=records.attention(doses),
        checkup=records.checkup_due(card),
    )


@router.get("/card/{pid}/timeline")
def timeline(
    request: Request,
    account: CurrentAccount,
    pid: str,
    page_no: PageNo = 1,
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
    org: Annotated[str, Query(max_length=120)] = "",
    type_: Annotated[str, Query(alias="type", max_length=40)] = "",
    q: Annotated[str, Query(max_length=400)] = "",
) -> Response:
    loaded = _guarded(request, account, pid)
    if isinstance(loaded, Response):
        return loaded
    card, switches = loaded
    filters, errors = records.parse_filters(from_, to, org, type_, q)
    found = [] if errors else records.timeline(card, filters)
    shown, pager = _paged(request, found, page_no)
    return _card_page(
        request,
        "portal/timeline.html",
        card,
        switches,
        "timeline",
        400 if errors else 200,
        entries=shown,
        pager=pager,
        errors=errors.problems,
        form={"from": from_, "to": to, "org": org, "type": type_, "q": q},
        filters=filters,
    )


@router.get("/card/{pid}/access-log")
def access_log(
    request: Request,
    account: CurrentAccount,
    pid: str,
    page_no: PageNo = 1,
    emergency: bool = False,
) -> Response:
    """Who opened this card: the issue-3 log, with emergency accesses standing out."""
    loaded = _guarded(request, account, pid)
    if isinstance(loaded, Response):
        return loaded
    card, switches = loaded
    engine, lang = engine_of(request), lang_of(request)
    t = Texts(lang)
    mine = frozenset({pid})
    flt = reports.AuditFilter(patient_ids=mine, emergency_only=emergency)
    total = reports.count(engine, flt)
    emergencies = reports.count(engine, reports.AuditFilter(patient_ids=mine, emergency_only=True))
    rows = reports.page(
        engine, flt, limit=reports.PAGE_SIZE, offset=(page_no - 1) * reports.PAGE_SIZE
    )
    times = page_times(request, account, pid)
    views = entry_views(rows, reports.Directory(engine), t, lang, me=own_refs(account), times=times)
    return _card_page(
        request,
        "portal/access_log.html",
        card,
        switches,
        "access-log",
        t=t,
        times=times,
        entries=views,
        pager=page_links(request, page_no, total),
        emergencies=emergencies,
        emergency_only=emergency,
    )


def _signature(request: Request, account: Account, pid: str, found: Entry) -> signing.Verification:
    """The entry's signature, checked against the exact version shown (issue 5: status
    wherever a signed document is displayed)."""
    shown = signing.as_shown(found.resource, pid)
    keys = signing.KeyStore(engine_of(request), settings_of(request).data_dir)
    with page_repository(request, account, "signature check") as repo:
        found_status = signing.statuses(repo, keys, pid, [shown])
    return found_status.get((found.resource_type, found.id), signing.UNSIGNED)


@router.get("/card/{pid}/entry/{rtype}/{rid}")
def entry(request: Request, account: CurrentAccount, pid: str, rtype: str, rid: str) -> Response:
    if not _TYPE.fullmatch(rtype) or not _ID.fullmatch(rid):
        raise HTTPException(404)
    loaded = _guarded(request, account, pid)
    if isinstance(loaded, Response):
        return loaded
    card, switches = loaded
    found = card.entry(rtype, rid)
    if found is None:
        raise HTTPException(404)
    series = None
    if found.resource_type == "Observation" and found.section == "labs":
        series = records.series_for(card, records.analyte_key(found))
    related = [(key, card.entry(*ref.split("/", 1))) for key, ref in found.related if "/" in ref]
    parent = next(
        (e for e in card.entries if any(c is found for c in e.children)),
        None,
    )
    encounter = card.entry(*found.encounter_ref.split("/", 1)) if found.encounter_ref else None
    return _card_page(
        request,
        "portal/entry.html",
        card,
        switches,
        found.section,
        signature=_signature(request, account, pid, found),
        report_url=f"/card/{pid}/reports/new?entry={quote(found.ref)}",
        e=found,
        series=series,
        chart=Markup(records.trend_svg(series)) if series else "",  # noqa: S704 - escaped SVG
        related=[(k, r) for k, r in related if r is not None],
        parent=parent,
        encounter=encounter,
        during=card.of_encounter(found.ref) if found.resource_type == "Encounter" else [],
        documents=[(a, records.document_text(a)) for a in found.attachments],
    )


@router.get("/card/{pid}/labs/trend/{key}")
def trend(request: Request, account: CurrentAccount, pid: str, key: str) -> Response:
    loaded = _guarded(request, account, pid)
    if isinstance(loaded, Response):
        return loaded
    card, switches = loaded
    series = records.series_for(card, key)
    if series is None:
        raise HTTPException(404)
    return _card_page(
        request,
        "portal/trend.html",
        card,
        switches,
        "labs",
        series=series,
        chart=Markup(records.trend_svg(series)),  # noqa: S704 - every text in it is escaped
    )


@router.get("/card/{pid}/documents/{rid}/download")
def download(
    request: Request,
    account: CurrentAccount,
    pid: str,
    rid: str,
    n: Annotated[int, Query(ge=0, le=100)] = 0,
) -> Response:
    """A document's file, read through the gate (and so audited) like any entry."""
    try:
        _check_person(request, account)
    except _Elsewhere as away:
        return redirect(away.url)
    if not _ID.fullmatch(rid):
        raise HTTPException(404)
    with _reading(request, account, pid) as repo:
        stored = repo.read("DocumentReference", rid)
        doc = stored.json()
        if stored.patient_id != pid or entered_in_error(doc):
            raise HTTPException(404)
        contents = doc.get("content") or []
        if n >= len(contents):
            raise HTTPException(404)
        att = contents[n].get("attachment") or {}
        data, ctype = _attachment_bytes(repo, att)
    if data is None:
        raise HTTPException(404)
    title = str(att.get("title") or doc.get("description") or "document")
    ext = records.Attachment(n, ctype, title).filename.rsplit(".", 1)[1]
    filename = f"{title[:80]}.{ext}"
    ascii_name = re.sub(r"[^A-Za-z0-9.\-]+", "_", filename).strip("_") or f"document.{ext}"
    return Response(
        data,
        media_type=ctype,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
            ),
            "X-Content-Type-Options": "nosniff",
        },
    )


def _attachment_bytes(repo: Repository, att: dict[str, Any]) -> tuple[bytes | None, str]:
    ctype = str(att.get("contentType") or "application/octet-stream")
    if att.get("data"):
        try:
            return base64.b64decode(att["data"], validate=True), ctype
        except (binascii.Error, ValueError):
            return None, ctype
    url = str(att.get("url") or "")
    match = re.fullmatch(r"(?:.*/)?Binary/([A-Za-z0-9\-.]{1,64})", url)
    if match is None:
        return None, ctype
    binary = orjson.loads(repo.read("Binary", match.group(1)).content)
    try:
        data = base64.b64decode(binary.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        return None, ctype
    return data, str(binary.get("contentType") or ctype)


@router.get("/card/{pid}/{section:medcard_section}")
def section(
    request: Request, account: CurrentAccount, pid: str, section: str, page_no: PageNo = 1
) -> Response:
    loaded = _guarded(request, account, pid)
    if isinstance(loaded, Response):
        return loaded
    card, switches = loaded
    entries = card.section(section)
    extra: dict[str, Any] = {}
    if section == "labs":
        extra["series"] = records.lab_series(card)
    if section == "vaccinations":
        doses = records.calendar(card)
        extra["doses"] = [d for d in doses if d.status != "no-data"]
        extra["unknown_doses"] = [d for d in doses if d.status == "no-data"]
    if section == "prescriptions":
        active = [e for e in entries if e.status in records.card.ACTIVE_PRESCRIPTION]
        extra["active"] = active
        entries = [e for e in entries if e not in active]
    shown, pager = _paged(request, entries, page_no)
    return _card_page(
        request,
        "portal/section.html",
        card,
        switches,
        section,
        key=section,
        entries=shown,
        pager=pager,
        **extra,
    )


@router.get("/card/{pid}/{rest:medcard_card_rest}")
def unknown(request: Request, account: CurrentAccount, pid: str, rest: str) -> Response:
    """Any other card address: a plain not-found page (after the same sign-in checks)."""
    try:
        _check_person(request, account)
    except _Elsewhere as away:
        return redirect(away.url)
    raise HTTPException(404)
