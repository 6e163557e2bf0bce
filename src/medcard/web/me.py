"""The signed-in person's own pages: home (``/me``), password change, sign-in codes.

The home page is deliberately plain: who you are, your role, your organisation or
linked card.  The portal and the clinician workspace build on it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from medcard.audit.recorder import DENIED, SUCCESS
from medcard.auth import accounts, mfa
from medcard.auth.passwords import PasswordPolicyError, verify_password
from medcard.auth.sessions import (
    create_session,
    destroy_account_sessions,
    rotate_session,
    set_session_cookie,
)
from medcard.web.deps import (
    SignedIn,
    client_ip,
    current_session,
    engine_of,
    is_https,
    login_url,
    require_csrf,
    settings_of,
    user_agent,
)
from medcard.web.render import PageRoute, page, redirect

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FormText = Annotated[str, Form()]
Current = Annotated[SignedIn, Depends(current_session)]

_NOTICES = {
    "password": "notice_password_changed",
    "totp_on": "notice_totp_on",
    "totp_off": "notice_totp_off",
}


@router.get("/me")
def home(request: Request, signed: Current, notice: str = "") -> Response:
    return page(request, "me.html", account=signed.account, notice=_NOTICES.get(notice, ""))


# -- password change -----------------------------------------------------------------


@router.get("/me/password")
def password_form(request: Request, signed: Current) -> Response:
    return page(request, "password.html", error="")


@router.post("/me/password", dependencies=[Depends(require_csrf)])
def password_submit(
    request: Request,
    signed: Current,
    current_password: FormText = "",
    new_password: FormText = "",
    new_password2: FormText = "",
) -> Response:
    engine, settings = engine_of(request), settings_of(request)
    account = signed.account
    error = ""
    if not verify_password(account.password_hash, current_password):
        error = "wrong_current_password"
        locked_for = accounts.record_failure(engine, account.id)
        events = [("password-change", DENIED, "wrong current password")]
        if locked_for:
            # Someone is guessing at an open session: end every session of the account.
            events.append(("lockout", DENIED, f"locked for {locked_for} s"))
            accounts.audit(engine, account, events)
            destroy_account_sessions(engine, account.id)
            return redirect(login_url())
        accounts.audit(engine, account, events)
    elif new_password != new_password2:
        error = "passwords_differ"
    else:
        try:
            accounts.set_password(engine, account.id, new_password)  # ends every session
        except PasswordPolicyError as exc:
            error = exc.code
        else:
            accounts.audit(
                engine,
                account,
                [("password-change", SUCCESS, "password changed; other sessions ended")],
            )
            cookie, _ = create_session(
                engine,
                account.id,
                mfa_ok=signed.session.mfa_ok,
                user_agent=user_agent(request),
                ip=client_ip(request),
                lifetime_seconds=settings.session_max_hours * 3600,
            )
            response = redirect("/me?notice=password")
            set_session_cookie(response, cookie, settings, https=is_https(request))
            return response
    return page(request, "password.html", 400, error=error)


# -- sign-in codes (optional for patients, mandatory and fixed for staff) --------------


def _security_page(
    request: Request, signed: SignedIn, *, failed: bool = False, notice: str = ""
) -> Response:
    account = signed.account
    secret = account.totp_secret if not account.totp_enabled else None
    return page(
        request,
        "security.html",
        401 if failed else 200,
        account=account,
        pending_secret=secret,
        uri=mfa.provisioning_uri(secret, account.login) if secret else "",
        failed=failed,
        notice=notice,
    )


@router.get("/me/security")
def security(request: Request, signed: Current, notice: str = "") -> Response:
    return _security_page(request, signed, notice=_NOTICES.get(notice, ""))


@router.post("/me/security/totp/start", dependencies=[Depends(require_csrf)])
def totp_start(request: Request, signed: Current) -> Response:
    if not signed.account.totp_enabled:
        accounts.begin_totp_enrolment(engine_of(request), signed.account.id)
    return redirect("/me/security")


@router.post("/me/security/totp/confirm", dependencies=[Depends(require_csrf)])
def totp_confirm(request: Request, signed: Current, code: FormText = "") -> Response:
    engine = engine_of(request)
    account = signed.account
    if accounts.accept_totp(engine, account, code, enrol=True):
        accounts.audit(engine, account, [("mfa-enrol", SUCCESS, "TOTP enrolled")])
        # The session has just proved the second factor: mark it so, under a new id.
        cookie, _ = rotate_session(engine, signed.session, mfa_ok=True)
        response = redirect("/me/security?notice=totp_on")
        set_session_cookie(response, cookie, settings_of(request), https=is_https(request))
        return response
    accounts.audit(engine, account, [("mfa-enrol", DENIED, "wrong confirmation code")])
    return _security_page(request, signed, failed=True)


@router.post("/me/security/totp/disable", dependencies=[Depends(require_csrf)])
def totp_disable(request: Request, signed: Current, code: FormText = "") -> Response:
    engine = engine_of(request)
    account = signed.account
    if account.is_staff or not account.totp_enabled:
        return _security_page(request, signed)
    if accounts.accept_totp(engine, account, code):
        accounts.disable_totp(engine, account.id)
        accounts.audit(engine, account, [("mfa-disable", SUCCESS, "TOTP turned off")])
        return redirect("/me/security?notice=totp_off")
    accounts.audit(engine, account, [("mfa-disable", DENIED, "wrong or reused code")])
    return _security_page(request, signed, failed=True)
