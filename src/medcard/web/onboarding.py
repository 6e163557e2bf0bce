"""Getting access to the card: the pages (the logic is in ``medcard.onboarding``).

::

    GET  /register                         e-mail or phone + password → a session → /access
    GET  /access                           status, identity form, results per field
    POST /access/check                     compare the entered identity with the card
    POST /access/request                   file the access request (sealed check result)
    POST /access/cancel                    close the card to this account (EMIAS route)
    POST /access/contact                   the e-mail address for notifications
    GET  /access/consent                   the consent text; agree / revoke
    POST /access/consent, /access/consent/revoke
    GET  /access/documents                 request kinds; requests with status and due date
    POST /access/documents
    GET  /registrar/access-requests        registrars: open requests with the comparison
    POST /registrar/access-requests/{id}/approve, .../reject

The result of a check travels to the filing form sealed (signed, bound to the
account, 30 minutes), so filing neither repeats the check (no extra attempt) nor
accepts a result the person did not get.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from medcard.access.roles import Role
from medcard.audit.recorder import DENIED, SUCCESS
from medcard.auth import accounts, ratelimit
from medcard.auth.accounts import Account, AccountError
from medcard.auth.passwords import PasswordPolicyError
from medcard.auth.sessions import set_session_cookie
from medcard.onboarding import changes, is_sso
from medcard.onboarding import consent as consents
from medcard.onboarding import documents as docs
from medcard.onboarding import requests as access_requests
from medcard.onboarding.consent import ConsentError
from medcard.onboarding.documents import DocumentsError
from medcard.onboarding.requests import RequestError
from medcard.onboarding.verification import (
    FIELDS,
    FieldResult,
    Identity,
    Outcome,
    Verification,
    verify,
)
from medcard.regions.features import Feature
from medcard.regions.gate import PatientRegion, patient_region
from medcard.web.deps import (
    SignedIn,
    client_ip,
    current_session,
    engine_of,
    fresh_session,
    is_https,
    over_limit,
    require_csrf,
    require_login_csrf,
    services,
    settings_of,
)
from medcard.web.regions import feature_off_page
from medcard.web.render import (
    PageRoute,
    error_page,
    page,
    presession_token,
    redirect,
    set_presession_cookie,
    too_many,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FormText = Annotated[str, Form()]
Current = Annotated[SignedIn, Depends(current_session)]
SEAL_MAX_AGE = 30 * 60
_SEAL_SALT = "medcard.onboarding.check.v1"

_NOTICES = {
    "registered": "ob_notice_registered",
    "filed": "ob_notice_filed",
    "granted": "ob_notice_granted",
    "consent_given": "ob_notice_consent_given",
    "consent_revoked": "ob_notice_consent_revoked",
    "requested": "ob_notice_requested",
    "approved": "ob_notice_approved",
    "rejected": "ob_notice_rejected",
    "cancelled": "ob_notice_cancelled",
    "contact": "ob_notice_contact",
}


def _notice(key: str) -> str:
    return _NOTICES.get(key, "")


def _seal(request: Request) -> URLSafeTimedSerializer:
    key = services(request).issuer.key.as_dict(private=True).get("d")
    secret = hmac.new(str(key).encode(), b"medcard onboarding check v1", hashlib.sha256).digest()
    return URLSafeTimedSerializer(secret, salt=_SEAL_SALT)


# -- registration ------------------------------------------------------------------------


def _register_page(request: Request, *, error: str = "", login: str = "") -> Response:
    token, new = presession_token(request)
    response = page(
        request,
        "onboarding/register.html",
        422 if error else 200,
        csrf_token=token,
        error=error,
        login=login,
    )
    if new:
        set_presession_cookie(request, response, token)
    return response


@router.get("/register")
def register_form(request: Request) -> Response:
    return _register_page(request)


@router.post("/register", dependencies=[Depends(require_login_csrf)])
def register_submit(
    request: Request, login: FormText = "", password: FormText = "", password2: FormText = ""
) -> Response:
    engine, settings = engine_of(request), settings_of(request)
    limited = over_limit(request, (ratelimit.REGISTER_IP, client_ip(request)))
    if limited is not None:
        return too_many(request, limited.retry_after)
    if password != password2:
        return _register_page(request, error="ob_err_password_mismatch", login=login)
    try:
        account = accounts.create_account(engine, login, password, Role.PATIENT)
    except PasswordPolicyError:
        return _register_page(request, error="ob_err_password_policy", login=login)
    except AccountError as exc:
        key = "ob_err_login_taken" if exc.code == "login_taken" else "ob_err_login"
        return _register_page(request, error=key, login=login)
    ip = client_ip(request)
    accounts.audit(engine, account, [("register", SUCCESS, f"self-registration; ip {ip}")])
    cookie = fresh_session(request, account)
    response = redirect("/access?notice=registered")
    set_session_cookie(response, cookie, settings, https=is_https(request))
    return response


# -- identity check and access request ----------------------------------------------------


def _patient_only(account: Account) -> None:
    if account.role is not Role.PATIENT:
        raise RequestError("ob_req_not_patient")


def _access_page(
    request: Request,
    signed: SignedIn,
    *,
    status_code: int = 200,
    identity: Identity | None = None,
    result: Verification | None = None,
    sealed: str = "",
    error: str = "",
    notice: str = "",
) -> Response:
    engine, account = engine_of(request), signed.account
    if account.role is not Role.PATIENT:
        return error_page(request, 403, "forbidden")
    history = access_requests.requests_of(engine, account)
    open_request = next((r for r in history if r.open), None)
    consent_given = consents.has_active(engine, account) if account.fhir_ref else False
    return page(
        request,
        "onboarding/access.html",
        status_code,
        account=account,
        linked=bool(account.fhir_ref),
        patient_id=account.fhir_ref.partition("/")[2],
        sso=is_sso(account),
        consent_given=consent_given,
        can_cancel=changes.granting_request(engine, account) is not None,
        contact=account.notify_email or (account.login if "@" in account.login else ""),
        history=history,
        open_request=open_request,
        identity=identity or Identity(),
        result=result,
        sealed=sealed,
        error=error,
        notice=_notice(notice),
        fields=FIELDS,
        explained=access_requests.explained_fields,
        csrf=signed.csrf,
    )


@router.get("/access")
def access(request: Request, signed: Current, notice: str = "") -> Response:
    return _access_page(request, signed, notice=notice)


@router.post("/access/check", dependencies=[Depends(require_csrf)])
def access_check(
    request: Request,
    signed: Current,
    snils: FormText = "",
    family: FormText = "",
    given: FormText = "",
    middle: FormText = "",
    birth_date: FormText = "",
    passport: FormText = "",
) -> Response:
    account = signed.account
    if account.role is not Role.PATIENT:
        return error_page(request, 403, "forbidden")
    if account.fhir_ref:
        return redirect("/access")
    identity = Identity(snils, family, given, middle, birth_date, passport)
    limit = settings_of(request).access_checks_per_day
    result = verify(engine_of(request), account, identity, limit=limit)
    sealed = ""
    if result.may_file:
        sealed = _seal(request).dumps(
            {
                "a": account.id,
                "i": identity.as_dict(),
                "o": result.outcome.value,
                "p": result.patient_id,
                "f": {k: v.value for k, v in result.fields.items()},
            }
        )
    status = {Outcome.INVALID: 422, Outcome.LIMITED: 429}.get(result.outcome, 200)
    return _access_page(
        request, signed, status_code=status, identity=identity, result=result, sealed=sealed
    )


@router.post("/access/request", dependencies=[Depends(require_csrf)])
def access_request(request: Request, signed: Current, check: FormText = "") -> Response:
    engine, account = engine_of(request), signed.account
    try:
        data: dict[str, Any] = _seal(request).loads(check, max_age=SEAL_MAX_AGE)
    except BadSignature:
        return _access_page(request, signed, status_code=400, error="ob_err_check_expired")
    if not isinstance(data, dict) or data.get("a") != account.id:
        return _access_page(request, signed, status_code=400, error="ob_err_check_expired")
    identity = Identity.from_dict(data.get("i") or {})
    result = Verification(
        Outcome(str(data.get("o"))),
        str(data.get("p") or ""),
        {k: FieldResult(v) for k, v in (data.get("f") or {}).items()},
    )
    try:
        filed = access_requests.file_request(engine, account, identity, result)
    except RequestError as exc:
        return _access_page(request, signed, status_code=409, error=exc.code)
    return redirect("/access?notice=" + ("granted" if filed.status == "completed" else "filed"))


@router.post("/access/cancel", dependencies=[Depends(require_csrf)])
def access_cancel(request: Request, signed: Current, confirm: FormText = "") -> Response:
    """«Отключить доступ к медицинской карте» (EMIAS route): closed for every session."""
    if confirm != "yes":
        return _access_page(request, signed, status_code=422, error="ob_cancel_tick")
    try:
        changes.cancel_access(engine_of(request), signed.account)
    except RequestError as exc:
        accounts.audit(engine_of(request), signed.account, [("access-cancel", DENIED, exc.code)])
        return _access_page(request, signed, status_code=409, error=exc.code)
    return redirect("/access?notice=cancelled")


@router.post("/access/contact", dependencies=[Depends(require_csrf)])
def access_contact(request: Request, signed: Current, email: FormText = "") -> Response:
    """Change the e-mail address for notifications about access (empty: the login)."""
    engine, account = engine_of(request), signed.account
    if account.role is not Role.PATIENT:
        return error_page(request, 403, "forbidden")
    try:
        accounts.set_notify_email(engine, account.id, email)
    except AccountError:
        accounts.audit(engine, account, [("contact-change", DENIED, "not an e-mail address")])
        return _access_page(request, signed, status_code=422, error="ob_contact_bad")
    what = "notification e-mail changed" if email.strip() else "notification e-mail cleared"
    accounts.audit(engine, account, [("contact-change", SUCCESS, what)])
    return redirect("/access?notice=contact")


# -- consent (SSO route) ------------------------------------------------------------------


def _consent_page(
    request: Request, signed: SignedIn, *, notice: str = "", error: str = "", status_code: int = 200
) -> Response:
    account = signed.account
    if account.role is not Role.PATIENT:
        return error_page(request, 403, "forbidden")
    if not account.fhir_ref:
        return redirect("/access")
    state = consents.state(engine_of(request), account)
    return page(
        request,
        "onboarding/consent.html",
        status_code,
        state=state,
        active=state.active.json() if state.active else None,
        notice=_notice(notice),
        error=error,
        csrf=signed.csrf,
    )


@router.get("/access/consent")
def consent_page(request: Request, signed: Current, notice: str = "") -> Response:
    return _consent_page(request, signed, notice=notice)


@router.post("/access/consent", dependencies=[Depends(require_csrf)])
def consent_give(request: Request, signed: Current, agree: FormText = "") -> Response:
    if agree != "yes":
        return _consent_page(request, signed, error="ob_consent_tick", status_code=422)
    try:
        _patient_only(signed.account)
        consents.give(engine_of(request), signed.account)
    except (ConsentError, RequestError) as exc:
        return _consent_page(request, signed, error=exc.code, status_code=409)
    return redirect("/access/documents?notice=consent_given")


@router.post("/access/consent/revoke", dependencies=[Depends(require_csrf)])
def consent_revoke(request: Request, signed: Current) -> Response:
    try:
        _patient_only(signed.account)
        consents.revoke(engine_of(request), signed.account)
    except (ConsentError, RequestError) as exc:
        return _consent_page(request, signed, error=exc.code, status_code=409)
    return redirect("/access/consent?notice=consent_revoked")


# -- documents (SSO route) ----------------------------------------------------------------


def _documents_page(
    request: Request,
    signed: SignedIn,
    *,
    notice: str = "",
    error: str = "",
    skipped: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    engine, account = engine_of(request), signed.account
    if account.role is not Role.PATIENT:
        return error_page(request, 403, "forbidden")
    if not account.fhir_ref:
        return redirect("/access")
    return page(
        request,
        "onboarding/documents.html",
        status_code,
        consent_given=consents.has_active(engine, account),
        requests=docs.requests_of(engine, account),
        kinds=list(docs.KINDS),
        patient_id=account.fhir_ref.partition("/")[2],
        business_days=_business_days(request, account),
        notice=_notice(notice),
        error=error,
        skipped=skipped or [],
        csrf=signed.csrf,
    )


def _region(request: Request, account: Account) -> PatientRegion | None:
    pid = account.fhir_ref.partition("/")[2] if account.fhir_ref.startswith("Patient/") else ""
    return patient_region(engine_of(request), pid) if pid else None


def _business_days(request: Request, account: Account) -> int:
    """The deadline the patient's region promises, else the installation's default."""
    region = _region(request, account)
    if region is not None and region.config is not None:
        return region.config.settings.document_request_days
    return settings_of(request).document_request_business_days


def _documents_off(request: Request, account: Account) -> Response | None:
    region = _region(request, account)
    if region is not None and not region.enabled(Feature.DOCUMENT_REQUESTS):
        return feature_off_page(request, region, Feature.DOCUMENT_REQUESTS)
    return None


@router.get("/access/documents")
def documents_page(request: Request, signed: Current, notice: str = "") -> Response:
    return _documents_off(request, signed.account) or _documents_page(
        request, signed, notice=notice
    )


@router.post("/access/documents", dependencies=[Depends(require_csrf)])
def documents_request(
    request: Request, signed: Current, kind: Annotated[list[str] | None, Form()] = None
) -> Response:
    return _documents_off(request, signed.account) or _documents_request(
        request, signed, kind or []
    )


def _documents_request(request: Request, signed: SignedIn, kinds: list[str]) -> Response:
    try:
        _patient_only(signed.account)
        created, skipped = docs.request_documents(
            engine_of(request),
            signed.account,
            kinds,
            business_days=_business_days(request, signed.account),
        )
    except (DocumentsError, RequestError) as exc:
        status = 403 if exc.code == "ob_docs_consent_required" else 422
        return _documents_page(request, signed, error=exc.code, status_code=status)
    if not created:
        return _documents_page(request, signed, skipped=skipped, status_code=409)
    if skipped:
        return _documents_page(request, signed, notice="requested", skipped=skipped)
    return redirect("/access/documents?notice=requested")


# -- the registrar's queue ----------------------------------------------------------------


def _queue_page(
    request: Request, signed: SignedIn, *, notice: str = "", error: str = "", status_code: int = 200
) -> Response:
    engine, account = engine_of(request), signed.account
    if account.role is not Role.REGISTRAR:
        return error_page(request, 403, "forbidden")
    items = [
        (r, access_requests.patient_summary(engine, account, r.patient_id))
        for r in access_requests.queue(engine, account)
    ]
    return page(
        request,
        "onboarding/registrar.html",
        status_code,
        items=items,
        explained=access_requests.explained_fields,
        notice=_notice(notice),
        error=error,
        csrf=signed.csrf,
    )


@router.get("/registrar/access-requests")
def registrar_queue(request: Request, signed: Current, notice: str = "") -> Response:
    return _queue_page(request, signed, notice=notice)


@router.post("/registrar/access-requests/{task_id}/approve", dependencies=[Depends(require_csrf)])
def registrar_approve(request: Request, signed: Current, task_id: str) -> Response:
    if signed.account.role is not Role.REGISTRAR:
        return error_page(request, 403, "forbidden")
    try:
        access_requests.approve(engine_of(request), signed.account, task_id)
    except RequestError as exc:
        return _queue_page(request, signed, error=exc.code, status_code=409)
    return redirect("/registrar/access-requests?notice=approved")


@router.post("/registrar/access-requests/{task_id}/reject", dependencies=[Depends(require_csrf)])
def registrar_reject(
    request: Request, signed: Current, task_id: str, reason: FormText = ""
) -> Response:
    engine = engine_of(request)
    if signed.account.role is not Role.REGISTRAR:
        accounts.audit(engine, signed.account, [("access-reject", DENIED, "not a registrar")])
        return error_page(request, 403, "forbidden")
    try:
        access_requests.reject(engine, signed.account, task_id, reason)
    except RequestError as exc:
        status = 422 if exc.code == "ob_req_reason_required" else 409
        return _queue_page(request, signed, error=exc.code, status_code=status)
    return redirect("/registrar/access-requests?notice=rejected")
