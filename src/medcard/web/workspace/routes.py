"""Workspace pages for clinicians and registrars (``/workspace/...``).

Thin pages: parse the form, call ``attachment``/``entries``/``signing``/``records``
through ``page_repository`` (the signed-in person's gate and audit), render.  Forms
that need fixing come back with every problem listed next to its field; nothing of
a refused form is saved.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from medcard import attachment, entries, records, signing
from medcard import identifiers as ids
from medcard.access import break_glass
from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.auth.accounts import Account
from medcard.entries import FormError, Problem
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository, Stored
from medcard.records import results_inbox
from medcard.ru_dates import parse_day, show_day
from medcard.terminology import CATALOGS, ICD10
from medcard.terminology import reference as cat
from medcard.web.deps import (
    current_account,
    engine_of,
    page_context,
    page_repository,
    require_csrf,
    settings_of,
)
from medcard.web.render import PageRoute, error_page, page, page_times, redirect
from medcard.web.workspace.fields import FORMS

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Signed = Annotated[Account, Depends(current_account)]
CLINICIANS = (Role.PRACTITIONER,)
REGISTRARS = (Role.REGISTRAR, Role.ORG_ADMIN)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
LAB_CATEGORY = "108252007"


def _need(account: Account, roles: tuple[Role, ...]) -> None:
    if account.role not in roles:
        raise HTTPException(403)


def _pid(pid: str) -> str:
    if not _ID.fullmatch(pid):
        raise HTTPException(404)
    return pid


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


@contextmanager
def _repo(request: Request, account: Account, purpose: str = "") -> Iterator[Repository]:
    with page_repository(request, account, purpose) as repo:
        try:
            yield repo
        except FhirError as exc:
            if exc.status in (403, 404, 410):
                raise HTTPException(404) from None
            raise


def _keys(request: Request) -> signing.KeyStore:
    return signing.KeyStore(engine_of(request), settings_of(request).data_dir)


def _org_id(account: Account) -> str:
    ref = account.organization_ref
    return ref.split("/", 1)[1] if ref.startswith("Organization/") else ""


def _name(patient: dict[str, Any]) -> str:
    first: dict[str, Any] = next(iter(patient.get("name") or []), {})
    return str(first.get("text") or "") or " ".join(
        [str(first.get("family", "")), *[str(g) for g in first.get("given") or []]]
    )


def _identifier(patient: dict[str, Any], system: str) -> str:
    return next(
        (
            str(i.get("value", ""))
            for i in patient.get("identifier") or []
            if i.get("system") == system
        ),
        "",
    )


def _summary(stored: Stored) -> dict[str, str]:
    p = stored.json()
    snils = _identifier(p, ids.SNILS_SYSTEM)
    return {
        "id": stored.id,
        "name": _name(p),
        "birth_date": str(p.get("birthDate", "")),
        "snils": ids.format_snils(snils) if snils else "",
        "enp": _identifier(p, ids.ENP_SYSTEM),
        "organization": str((p.get("managingOrganization") or {}).get("display", "")),
    }


# -- home and search -----------------------------------------------------------------------


MY_PATIENTS_PAGE = 20


@router.get("/workspace")
def home(
    request: Request, account: Signed, name: str = "", page_no: int = 1, notice: str = ""
) -> Response:
    """The search form, and for a doctor the patients attached to them (issue 20)."""
    _need(account, CLINICIANS + REGISTRARS)
    ctx: dict[str, Any] = {"account": account, "q": "", "birth_date": ""}
    if account.role == Role.PRACTITIONER and account.fhir_ref.startswith("Practitioner/"):
        ctx["mine"] = _my_patients(request, account, name.strip()[:100], max(1, page_no))
        with _repo(request, account, "treatment") as repo:
            ctx["new_results"] = results_inbox.new_results(repo, account.fhir_ref)
        # each result in its own patient's zone, named (the doctor's patients may be in
        # several regions)
        ctx["patient_times"] = {
            r.patient_id: page_times(request, account, r.patient_id) for r in ctx["new_results"]
        }
        ctx["notice"] = "acknowledged" if notice == "acknowledged" else ""
    return page(request, "workspace/home.html", **ctx)


@router.post("/workspace/results/{rid}/acknowledge", dependencies=[Depends(require_csrf)])
def acknowledge_result(request: Request, account: Signed, rid: str) -> Response:
    """The doctor has seen a new lab result: recorded, and it leaves their inbox."""
    _need(account, CLINICIANS)
    with _repo(request, account, "treatment") as repo:
        results_inbox.acknowledge(repo, account.fhir_ref, _pid(rid))
    return redirect("/workspace?notice=acknowledged")


def _my_patients(request: Request, account: Account, name: str, page_no: int) -> dict[str, Any]:
    """Patients whose district doctor (Patient.generalPractitioner) the doctor is, by name,
    a page at a time; the search passes the gate and is audited like any other."""
    query = [("general-practitioner", account.fhir_ref)]
    query += [("name", w) for w in name.split()[:3]]
    offset = (page_no - 1) * MY_PATIENTS_PAGE
    query += [
        ("_sort", "family,given"),
        ("_count", str(MY_PATIENTS_PAGE)),
        ("_offset", str(offset)),
        ("_total", "accurate"),
    ]
    with _repo(request, account, "treatment") as repo:
        found = repo.search(parse("Patient", query))
    total = found.total or 0
    pages = max(1, -(-total // MY_PATIENTS_PAGE))
    return {
        "rows": [_summary(s) for s in found.matches],
        "total": total,
        "name": name,
        "page": page_no,
        "pages": pages,
    }


def _query(q: str, birth_date: str) -> tuple[list[tuple[str, str]], str]:
    """Search parameters for what was typed, and whether it is an exact identifier."""
    digits = re.sub(r"[\s\-]", "", q)
    if digits.isdigit() and len(digits) == 11:
        return [("identifier", f"{ids.SNILS_SYSTEM}|{ids.validate_snils(digits)}")], "snils"
    if digits.isdigit() and len(digits) == 16:
        return [("identifier", f"{ids.ENP_SYSTEM}|{ids.validate_enp(digits)}")], "enp"
    if digits.isdigit() and len(digits) == 10:
        return [("identifier", ids.passport_search(digits))], "passport"
    if digits.isdigit():
        raise ids.IdentifierError("digits")
    words = q.split()
    query = [("name", w) for w in words[:3]]
    if birth_date:
        query.append(("birthdate", birth_date))
    return query, ""


@router.get("/workspace/search")
def search(request: Request, account: Signed, q: str = "", birth_date: str = "") -> Response:
    _need(account, CLINICIANS + REGISTRARS)
    q, birth_date = q.strip()[:100], birth_date.strip()[:10]
    ctx: dict[str, Any] = {"account": account, "q": q, "birth_date": birth_date, "results": []}
    try:
        born = parse_day(birth_date).isoformat() if birth_date else ""  # 15.07.1985 or ISO
        query, exact = _query(q, born)
        if not exact and len(q) < 2:
            raise ids.IdentifierError("short")
    except ids.IdentifierError:
        return page(request, "workspace/home.html", 400, error="ws_err_search", **ctx)
    except ValueError:
        return page(request, "workspace/home.html", 400, error="ws_err_date", **ctx)
    with _repo(request, account, "patient search") as repo:
        found = repo.search(parse("Patient", [*query, ("_count", "50")])).matches
    ctx["results"] = [_summary(s) for s in found]
    ctx["searched"] = True
    if not found and exact and account.role == Role.PRACTITIONER:
        ctx["emergency_id"] = _hidden_patient(request, query)
    return page(request, "workspace/home.html", **ctx)


def _hidden_patient(request: Request, query: list[tuple[str, str]]) -> str:
    """A card the gate hides from this practitioner, found by an exact identifier only,
    so emergency access can be asked for; its contents stay hidden until then."""
    repo = Repository(engine_of(request), AccessContext.system("system:emergency-lookup"))
    try:
        found = repo.search(parse("Patient", [*query, ("_count", "2")])).matches
    finally:
        repo.close()
    return found[0].id if len(found) == 1 else ""


@router.post("/workspace/patients/{pid}/emergency", dependencies=[Depends(require_csrf)])
async def emergency(request: Request, account: Signed, pid: str) -> Response:
    _need(account, CLINICIANS)
    form = await _form(request)
    reason = form.get("reason", "")
    ctx = page_context(request, account, "emergency access")
    try:
        break_glass.grant(engine_of(request), ctx, _pid(pid), reason)
    except FhirError as exc:
        if exc.status == 404:
            raise HTTPException(404) from None
        return page(
            request,
            "workspace/home.html",
            400,
            account=account,
            q="",
            birth_date="",
            results=[],
            emergency_id=pid,
            error="ws_err_emergency_reason",
            reason=reason,
        )
    return redirect(f"/workspace/patients/{pid}?notice=emergency")


# -- attachment (registrars) -------------------------------------------------------------------


def _polyclinics(repo: Repository) -> list[tuple[str, str]]:
    return entries.organizations(repo, "polyclinic")


def _attach_page(request: Request, account: Signed, status: int = 200, **ctx: Any) -> Response:
    with _repo(request, account) as repo:
        doctors = _doctors(repo, _org_id(account))
    ctx.setdefault("form", {})
    ctx.setdefault("problems", [])
    return page(
        request,
        "workspace/attach.html",
        status,
        account=account,
        doctors=doctors,
        submission=uuid.uuid4().hex,
        **ctx,
    )


def _doctors(repo: Repository, org_id: str) -> list[tuple[str, str]]:
    if not org_id:
        return []
    roles = repo.search(
        parse("PractitionerRole", [("organization", f"Organization/{org_id}"), ("_count", "200")])
    ).matches
    out = []
    for r in roles:
        res = r.json()
        prac = res.get("practitioner") or {}
        ref = str(prac.get("reference", ""))
        if ref.startswith("Practitioner/"):
            position = next((str(c.get("text", "")) for c in res.get("code") or []), "")
            out.append(
                (ref.split("/", 1)[1], f"{prac.get('display', ref)} — {position}".strip(" —"))
            )
    return sorted(set(out), key=lambda x: x[1])


@router.get("/workspace/attach")
def attach_form(request: Request, account: Signed) -> Response:
    _need(account, REGISTRARS)
    return _attach_page(request, account)


@router.post("/workspace/attach", dependencies=[Depends(require_csrf)])
async def attach_submit(request: Request, account: Signed) -> Response:
    _need(account, REGISTRARS)
    form = await _form(request)
    org_id = _org_id(account)
    doctor = form.get("practitioner", "")
    try:
        person = attachment.parse_person(form)
        with _repo(request, account, "attachment") as repo:
            if doctor and doctor not in dict(_doctors(repo, org_id)):
                raise FormError.one("practitioner", "ws_err_choose")
            result = attachment.attach(
                repo,
                org_id,
                person=person,
                practitioner_id=doctor,
                confirm_new=form.get("confirm_new") == "1",
            )
    except FormError as exc:
        similar: list[dict[str, str]] = []
        if "confirm_new" in exc.fields():
            with _repo(request, account) as repo:
                similar = [_summary(s) for s in attachment.find_matches(repo, person).similar]
        return _attach_page(
            request, account, 400, form=form, problems=exc.problems, similar=similar
        )
    notice = "created" if result.created else "moved" if result.moved_from else "attached"
    return redirect(f"/workspace/patients/{result.patient_id}/attachment?notice={notice}")


@router.get("/workspace/patients/{pid}/attachment")
def attachment_page(
    request: Request,
    account: Signed,
    pid: str,
    notice: str = "",
    status: int = 200,
    problems: list[Problem] | None = None,
) -> Response:
    _need(account, REGISTRARS + CLINICIANS)
    with _repo(request, account, "attachment") as repo:
        patient = repo.read("Patient", _pid(pid))
        items = attachment.history(repo, pid)
        polyclinics = _polyclinics(repo)
    return page(
        request,
        "workspace/attachment.html",
        status,
        account=account,
        patient=_summary(patient),
        history=items,
        polyclinics=polyclinics,
        notice=notice if notice in ("created", "moved", "attached", "detached") else "",
        problems=problems or [],
        own_org=account.organization_ref,
    )


@router.post("/workspace/patients/{pid}/attach-existing", dependencies=[Depends(require_csrf)])
async def attach_existing(request: Request, account: Signed, pid: str) -> Response:
    _need(account, REGISTRARS)
    form = await _form(request)
    target = form.get("organization") or _org_id(account)
    try:
        with _repo(request, account, "attachment") as repo:
            result = attachment.attach(repo, target, patient_id=_pid(pid))
    except FormError as exc:
        return attachment_page(request, account, pid, status=400, problems=exc.problems)
    return redirect(
        f"/workspace/patients/{pid}/attachment?notice={'moved' if result.moved_from else 'attached'}"
    )


@router.post("/workspace/patients/{pid}/detach", dependencies=[Depends(require_csrf)])
async def detach(request: Request, account: Signed, pid: str) -> Response:
    _need(account, REGISTRARS)
    form = await _form(request)
    try:
        with _repo(request, account, "attachment") as repo:
            attachment.detach(repo, _pid(pid), form.get("reason", ""))
    except FormError as exc:
        return attachment_page(request, account, pid, status=400, problems=exc.problems)
    return redirect(f"/workspace/patients/{pid}/attachment?notice=detached")


# -- the card for the clinician ---------------------------------------------------------------------


def _statuses(
    request: Request, repo: Repository, pid: str, stored: list[Stored]
) -> dict[str, signing.Verification]:
    found = signing.statuses(repo, _keys(request), pid, stored)
    return {f"{t}/{i}": v for (t, i), v in found.items()}


def _stored_of(card: records.Card) -> list[Stored]:
    """The current versions of the card's entries, for their signature status."""
    return [signing.as_shown(e.resource, card.patient_id) for e in card.entries]


@router.get("/workspace/patients/{pid}")
def card_page(
    request: Request, account: Signed, pid: str, notice: str = "", section: str = ""
) -> Response:
    _need(account, CLINICIANS)
    with _repo(request, account, "treatment") as repo:
        card = records.load_card(repo, _pid(pid))
        statuses = _statuses(request, repo, pid, _stored_of(card))
    overview = card.overview()
    vitals = _last_vitals(card)
    pending_results = [
        e for e in card.section("referrals") if e.status in ("active", "on-hold", "draft")
    ]
    patient_entered = [e for e in card.listed() if e.patient_entered]
    listed = card.section(section) if section in records.SECTION_BY_KEY else card.listed()
    return page(
        request,
        "workspace/card.html",
        times=page_times(request, account, card.patient_id),
        account=account,
        card=card,
        overview=overview,
        vitals=vitals,
        pending=pending_results,
        patient_entered=patient_entered,
        entries=listed[:300],
        total=len(listed),
        statuses=statuses,
        sections=records.SECTIONS,
        counts=card.counts(),
        section=section,
        kinds=list(FORMS),
        notice=notice if notice in ("emergency", "saved", "duplicate", "corrected") else "",
        emergency=pid in page_context(request, account).emergency_patients,
    )


def _last_vitals(card: records.Card) -> list[records.Entry]:
    seen: dict[str, records.Entry] = {}
    for e in card.section("measurements") + card.section("exams"):
        for x in [e, *e.children]:
            if x.resource_type == "Observation" and x.title and x.title not in seen:
                seen[x.title] = x
    return list(seen.values())[:8]


@router.get("/workspace/patients/{pid}/entry/{rtype}/{rid}")
def entry_page(
    request: Request, account: Signed, pid: str, rtype: str, rid: str, notice: str = ""
) -> Response:
    _need(account, CLINICIANS)
    if not _TYPE.fullmatch(rtype):
        raise HTTPException(404)
    with _repo(request, account, "treatment") as repo:
        stored = repo.read(rtype, _pid(rid))
        if stored.patient_id != pid:
            raise HTTPException(404)
        card = records.load_card(repo, pid)
        status = signing.statuses(repo, _keys(request), pid, [stored])[(rtype, rid)]
        history = repo.history(rtype, rid)
    entry = card.entry(rtype, rid)
    return page(
        request,
        "workspace/entry.html",
        times=page_times(request, account, pid),
        account=account,
        card=card,
        entry=entry,
        stored=stored,
        status=status,
        versions=_versions(history),
        notice=notice if notice in ("saved", "duplicate", "corrected") else "",
        problems=[],
        correctable=rtype in CORRECTABLE,
        correctable_statuses=CORRECTABLE[rtype][2] if rtype in CORRECTABLE else (),
        label=records.label,
        value_text=records.value_text,
    )


def _versions(history: Any) -> list[tuple[int, str]]:
    entries_ = history[0] if isinstance(history, tuple) else history
    out = []
    for h in entries_:
        stored = h.stored
        out.append(
            (stored.version_id, str((stored.json().get("meta") or {}).get("lastUpdated", "")))
        )
    return out


# A correction of a signed entry: its status (the common real-world change), a note;
# both make a new signed version.
CORRECTABLE = {
    "Condition": (
        "clinicalStatus",
        cat.CONDITION_CLINICAL,
        ("active", "remission", "resolved", "entered-in-error"),
    ),
    "AllergyIntolerance": (
        "clinicalStatus",
        cat.ALLERGY_CLINICAL,
        ("active", "inactive", "resolved", "entered-in-error"),
    ),
    "MedicationRequest": ("status", "", ("active", "stopped", "completed", "entered-in-error")),
    "ServiceRequest": ("status", "", ("active", "revoked", "completed", "entered-in-error")),
    "DocumentReference": ("status", "", ("current", "entered-in-error")),
    "Composition": ("status", "", ("final", "amended", "entered-in-error")),
    "Immunization": ("status", "", ("completed", "entered-in-error")),
    "DiagnosticReport": ("status", "", ("final", "amended", "corrected", "entered-in-error")),
}


@router.post(
    "/workspace/patients/{pid}/entry/{rtype}/{rid}/correct", dependencies=[Depends(require_csrf)]
)
async def correct(request: Request, account: Signed, pid: str, rtype: str, rid: str) -> Response:
    _need(account, CLINICIANS)
    if rtype not in CORRECTABLE:
        raise HTTPException(404)
    form = await _form(request)
    element, system, allowed = CORRECTABLE[rtype]
    new_status = form.get("status", "")
    reason = " ".join(form.get("reason", "").split())
    problems = []
    if new_status not in allowed:
        problems.append(Problem("status", "ws_err_choose"))
    if len(reason) < 5:
        problems.append(Problem("reason", "ws_err_reason"))
    with _repo(request, account, "treatment") as repo:
        stored = repo.read(rtype, _pid(rid))
        if stored.patient_id != pid:
            raise HTTPException(404)
        if not problems:
            content = stored.json()
            content.pop("meta", None)
            if system:
                content[element] = {
                    "coding": [{"system": system, "code": new_status}],
                    "text": new_status,
                }
            else:
                content[element] = new_status
            try:
                signing.correct(
                    repo,
                    _keys(request),
                    rtype,
                    rid,
                    content,
                    reason,
                    signer_name=account.display_name,
                )
            except FhirError as exc:
                if exc.status != 400:
                    raise
                problems.append(Problem("reason", "ws_err_reason"))
    if problems:
        return error_page(request, 400, "bad_request")
    target = f"/workspace/patients/{pid}"
    if new_status != "entered-in-error":
        target += f"/entry/{rtype}/{rid}"
    return redirect(target + "?notice=corrected")


# -- writing to the card ------------------------------------------------------------------------------


def _form_page(
    request: Request,
    account: Account,
    repo: Repository,
    pid: str,
    kind: str,
    status: int = 200,
    form: dict[str, str] | None = None,
    problems: list[Problem] | None = None,
) -> Response:
    patient = repo.read("Patient", pid)
    fields = FORMS[kind]
    orgs: dict[str, list[tuple[str, str]]] = {}
    orders: list[tuple[str, str]] = []
    for f in fields:
        if f.widget == "orgs":
            orgs[f.name] = entries.organizations(repo, *f.org_kinds)
        if f.widget == "orders":
            orders = [
                (
                    o["id"],
                    f"{(o.get('code') or {}).get('text', '')} — {show_day(o.get('authoredOn', ''))}",
                )
                for o in entries.open_orders(repo, pid, f.order_category)
            ]
    form = form or {}
    panel = form.get("panel", "") if form.get("panel", "") in cat.LAB_PANELS else ""
    analytes = [(k, cat.LAB_TESTS[k]) for k in cat.LAB_PANELS[panel][3]] if panel else []
    return page(
        request,
        "workspace/entry_form.html",
        status,
        account=account,
        patient=_summary(patient),
        kind=kind,
        fields=fields,
        form=form,
        problems=problems or [],
        fields_with_problems={p.field for p in problems or []},
        orgs=orgs,
        orders=orders,
        analytes=analytes,
        submission=form.get("submission") or uuid.uuid4().hex,
    )


@router.get("/workspace/patients/{pid}/new/{kind}")
def entry_form(
    request: Request, account: Signed, pid: str, kind: str, panel: str = "", order: str = ""
) -> Response:
    _need(account, CLINICIANS)
    if kind not in FORMS:
        raise HTTPException(404)
    with _repo(request, account, "treatment") as repo:
        return _form_page(
            request, account, repo, _pid(pid), kind, form={"panel": panel, "order": order}
        )


@router.post("/workspace/patients/{pid}/new/{kind}", dependencies=[Depends(require_csrf)])
async def entry_submit(request: Request, account: Signed, pid: str, kind: str) -> Response:
    _need(account, CLINICIANS)
    if kind not in FORMS:
        raise HTTPException(404)
    form = await _form(request)
    if kind == "lab_result" and form.get("choose_panel"):
        with _repo(request, account, "treatment") as repo:
            return _form_page(request, account, repo, _pid(pid), kind, form=form)
    keys = _keys(request)
    with _repo(request, account, "treatment") as repo:
        try:
            done = entries.submit(repo, keys, kind, _pid(pid), form, form.get("submission", ""))
        except FormError as exc:
            return _form_page(request, account, repo, pid, kind, 400, form, exc.problems)
    main = done.main
    notice = "duplicate" if done.duplicate else "saved"
    return redirect(
        f"/workspace/patients/{pid}/entry/{main.resource_type}/{main.id}?notice={notice}"
    )


# -- referrals and their results (the lab delivery view) ---------------------------------------------


@router.get("/workspace/referrals")
def referrals(request: Request, account: Signed) -> Response:
    _need(account, CLINICIANS)
    with _repo(request, account, "treatment") as repo:
        sent = repo.search(
            parse(
                "ServiceRequest",
                [("requester", account.fhir_ref), ("_sort", "-authored"), ("_count", "100")],
            )
        ).matches
        ids_ = [s.id for s in sent]
        results: dict[str, list[dict[str, Any]]] = {}
        if ids_:
            for rtype in ("DiagnosticReport",):
                found = repo.search(
                    parse(
                        rtype,
                        [
                            ("based-on", ",".join(f"ServiceRequest/{i}" for i in ids_)),
                            ("_count", "500"),
                        ],
                    )
                ).matches
                for r in found:
                    res = r.json()
                    for b in res.get("basedOn") or []:
                        ref = str(b.get("reference", ""))
                        results.setdefault(ref.split("/", 1)[-1], []).append(res)
        rows = []
        for s in sent:
            sr = s.json()
            rows.append(
                {
                    "id": s.id,
                    "patient": str((sr.get("subject") or {}).get("reference", "")).split("/", 1)[
                        -1
                    ],
                    "code": str((sr.get("code") or {}).get("text", "")),
                    "performer": str((sr.get("performer") or [{}])[0].get("display", "")),
                    "authored": str(sr.get("authoredOn", ""))[:10],
                    "status": str(sr.get("status", "")),
                    "results": results.get(s.id, []),
                }
            )
    return page(request, "workspace/referrals.html", account=account, rows=rows)


# -- type-ahead ---------------------------------------------------------------------------------------


@router.get("/workspace/lookup/{name}")
def lookup(account: Signed, name: str, q: str = "") -> Response:
    _need(account, CLINICIANS + REGISTRARS)
    q = q.strip()[:80]
    if name == "icd10":
        found = ICD10.search(q, 15)
    elif name in CATALOGS:
        found = CATALOGS[name].search(q, 15)
    else:
        raise HTTPException(404)
    return JSONResponse([{"code": c.code, "display": c.display} for c in found])
