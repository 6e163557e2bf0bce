"""Sign-in pages: password, second factor (and its enrolment), logout, password reset.

Every outcome a stranger could probe looks the same: an unknown login, a wrong
password, a locked or deactivated account all give one message, one status and
one argon2 verification's worth of time.  Each request appends its sign-in events
to the audit log once.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, Response

from medcard import clock
from medcard.audit.recorder import DENIED, SUCCESS
from medcard.auth import accounts, mfa, ratelimit
from medcard.auth.accounts import LoginAttempt
from medcard.auth.passwords import PasswordPolicyError
from medcard.auth.sessions import (
    clear_session_cookie,
    destroy_by_hash,
    rotate_session,
    set_session_cookie,
)
from medcard.web.deps import (
    SignedIn,
    client_ip,
    engine_of,
    fresh_session,
    is_https,
    login_url,
    over_limit,
    pending_session,
    require_csrf,
    require_login_csrf,
    safe_next,
    settings_of,
)
from medcard.web.homes import landing
from medcard.web.render import (
    PageRoute,
    page,
    presession_token,
    redirect,
    set_presession_cookie,
    too_many,
)

log = logging.getLogger("medcard.auth")
router = APIRouter(route_class=PageRoute, include_in_schema=False)

FormText = Annotated[str, Form()]


# -- password ------------------------------------------------------------------------


def _login_page(
    request: Request, *, next_path: str = "", failed: bool = False, notice: str = ""
) -> Response:
    token, new = presession_token(request)
    response = page(
        request,
        "login.html",
        401 if failed else 200,
        csrf_token=token,
        next_path=safe_next(next_path),
        failed=failed,
        notice=notice,
    )
    if new:
        set_presession_cookie(request, response, token)
    return response


_NOTICES = {
    "expired": "notice_expired",
    "signed_out": "notice_signed_out",
    "mfa_locked": "notice_mfa_locked",
    "reset_done": "notice_reset_done",
}


@router.get("/login")
def login_form(request: Request, next: str = "", expired: str = "", notice: str = "") -> Response:
    key = "notice_expired" if expired else _NOTICES.get(notice, "")
    if not key and safe_next(next):
        key = "notice_login_required"
    return _login_page(request, next_path=next, notice=key)


def _failure_detail(attempt: LoginAttempt, login: str) -> str:
    if attempt.outcome == "unknown":
        return f"unknown login #{accounts.login_fingerprint(login)}"
    return {
        "wrong": "wrong password",
        "locked": "refused: account locked",
        "inactive": "refused: account deactivated",
    }.get(attempt.outcome, attempt.outcome)


@router.post("/login", dependencies=[Depends(require_login_csrf)])
def login_submit(
    request: Request, login: FormText = "", password: FormText = "", next: FormText = ""
) -> Response:
    engine, settings = engine_of(request), settings_of(request)
    ip = client_ip(request)
    limited = over_limit(
        request,
        (ratelimit.LOGIN_IP, ip),
        (ratelimit.LOGIN_ACCOUNT, accounts.login_fingerprint(login) if login else ""),
    )
    if limited is not None:
        return too_many(request, limited.retry_after)
    attempt = accounts.authenticate(engine, login, password)
    account = attempt.account
    if not attempt.ok or account is None:
        events = [("login", DENIED, f"{_failure_detail(attempt, login)}; ip {ip}")]
        if attempt.locked_for:
            events.append(
                ("lockout", DENIED, f"locked for {attempt.locked_for} s after repeated failures")
            )
        accounts.audit(engine, account if account is not None else "anonymous", events)
        return _login_page(request, next_path=next, failed=True)
    cookie = fresh_session(request, account)
    nxt = safe_next(next)
    if account.needs_mfa:
        detail = "password accepted; second factor pending"
        target = "/login/mfa" + (f"?next={quote(nxt, safe='')}" if nxt else "")
    else:
        detail = "signed in with password"
        target = landing(account, nxt)
    accounts.audit(engine, account, [("login", SUCCESS, f"{detail}; ip {ip}")])
    response = redirect(target)
    set_session_cookie(response, cookie, settings, https=is_https(request))
    return response


# -- second factor -------------------------------------------------------------------


def _after_mfa(request: Request, signed: SignedIn, next_path: str) -> Response:
    """Rotate the session (new id, mfa_ok) and continue where the person was going, or home."""
    cookie, _ = rotate_session(engine_of(request), signed.session, mfa_ok=True)
    response = redirect(landing(signed.account, next_path))
    set_session_cookie(response, cookie, settings_of(request), https=is_https(request))
    return response


@router.get("/login/mfa")
def mfa_form(
    request: Request, signed: Annotated[SignedIn, Depends(pending_session)], next: str = ""
) -> Response:
    account = signed.account
    if signed.session.mfa_ok or not account.needs_mfa:
        return redirect(landing(account, next))
    if not account.totp_enabled:
        return redirect("/login/mfa/enrol" + (f"?next={quote(next, safe='')}" if next else ""))
    return page(request, "mfa.html", next_path=safe_next(next), failed=False, csrf=signed.csrf)


@router.post("/login/mfa", dependencies=[Depends(require_csrf)])
def mfa_submit(
    request: Request,
    signed: Annotated[SignedIn, Depends(pending_session)],
    code: FormText = "",
    next: FormText = "",
) -> Response:
    engine = engine_of(request)
    account = signed.account
    limited = over_limit(request, (ratelimit.MFA_IP, client_ip(request)))
    if limited is not None:
        return too_many(request, limited.retry_after)
    if signed.session.mfa_ok or not account.totp_enabled:
        return mfa_form(request, signed, next)
    if account.locked_until > clock.now_micros():
        destroy_by_hash(engine, signed.session.id_hash)
        return redirect(login_url(notice="mfa_locked"))
    if accounts.accept_totp(engine, account, code):
        accounts.audit(engine, account, [("mfa", SUCCESS, "TOTP code accepted")])
        return _after_mfa(request, signed, next)
    events = [("mfa", DENIED, "wrong or reused TOTP code")]
    locked_for = accounts.record_failure(engine, account.id)
    if locked_for:
        events.append(("lockout", DENIED, f"locked for {locked_for} s after repeated wrong codes"))
        accounts.audit(engine, account, events)
        destroy_by_hash(engine, signed.session.id_hash)
        response = redirect(login_url(notice="mfa_locked"))
        clear_session_cookie(response, settings_of(request), https=is_https(request))
        return response
    accounts.audit(engine, account, events)
    return page(request, "mfa.html", 401, next_path=safe_next(next), failed=True, csrf=signed.csrf)


def _enrol_page(request: Request, signed: SignedIn, next_path: str, *, failed: bool) -> Response:
    account = signed.account
    secret = accounts.begin_totp_enrolment(engine_of(request), account.id)
    return page(
        request,
        "enrol.html",
        401 if failed else 200,
        secret=secret,
        uri=mfa.provisioning_uri(secret, account.login),
        next_path=safe_next(next_path),
        failed=failed,
        csrf=signed.csrf,
        action="/login/mfa/enrol",
    )


@router.get("/login/mfa/enrol")
def enrol_form(
    request: Request, signed: Annotated[SignedIn, Depends(pending_session)], next: str = ""
) -> Response:
    account = signed.account
    if account.totp_enabled:
        return redirect("/login/mfa" + (f"?next={quote(next, safe='')}" if next else ""))
    if not account.is_staff:
        return redirect("/me/security")  # patients turn codes on from their own page
    return _enrol_page(request, signed, next, failed=False)


@router.post("/login/mfa/enrol", dependencies=[Depends(require_csrf)])
def enrol_submit(
    request: Request,
    signed: Annotated[SignedIn, Depends(pending_session)],
    code: FormText = "",
    next: FormText = "",
) -> Response:
    engine = engine_of(request)
    account = signed.account
    if account.totp_enabled or not account.is_staff:
        return enrol_form(request, signed, next)
    if accounts.accept_totp(engine, account, code, enrol=True):
        accounts.audit(engine, account, [("mfa-enrol", SUCCESS, "TOTP enrolled")])
        return _after_mfa(request, signed, next)
    accounts.audit(engine, account, [("mfa-enrol", DENIED, "wrong confirmation code")])
    return _enrol_page(request, signed, next, failed=True)


# -- logout --------------------------------------------------------------------------


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout(request: Request, signed: Annotated[SignedIn, Depends(pending_session)]) -> Response:
    engine = engine_of(request)
    destroy_by_hash(engine, signed.session.id_hash)
    accounts.revoke_tokens(engine, signed.account.id)  # apps' tokens end too (issue 14)
    accounts.audit(engine, signed.account, [("logout", SUCCESS, "signed out")])
    response = redirect(login_url(notice="signed_out"))
    clear_session_cookie(response, settings_of(request), https=is_https(request))
    return response


# -- password reset ------------------------------------------------------------------


def _presession_page(
    request: Request, template: str, status_code: int = 200, **context: object
) -> Response:
    token, new = presession_token(request)
    response = page(request, template, status_code, csrf_token=token, **context)
    if new:
        set_presession_cookie(request, response, token)
    return response


@router.get("/password-reset")
def reset_request_form(request: Request) -> Response:
    return _presession_page(request, "reset_request.html")


@router.post("/password-reset", dependencies=[Depends(require_login_csrf)])
def reset_request_submit(request: Request, login: FormText = "") -> Response:
    """Create a link if the account exists; the page reads the same whether it does or not."""
    engine, settings = engine_of(request), settings_of(request)
    limited = over_limit(request, (ratelimit.RESET_IP, client_ip(request)))
    if limited is not None:
        return too_many(request, limited.retry_after)
    account = accounts.get_by_login(engine, login)
    link = ""
    if account is not None and account.active:
        token = accounts.create_reset(engine, account.id)
        base = settings.base_url.rstrip("/") or str(request.base_url).rstrip("/")
        link = f"{base}/password-reset/{token}"
        # No mail server yet: the operator passes the link on (see the page text).
        log.warning("password reset link for %s (valid 30 min): %s", account.login, link)
        accounts.audit(
            engine,
            account,
            [("password-reset-request", SUCCESS, "reset link written to the server log")],
        )
    else:
        fingerprint = accounts.login_fingerprint(login)
        accounts.audit(
            engine,
            "anonymous",
            [("password-reset-request", DENIED, f"no active account #{fingerprint}")],
        )
    return page(
        request,
        "reset_sent.html",
        demo_link=link if settings.demo_mode else "",
        demo_mode=settings.demo_mode,
    )


def _reset_invalid(request: Request) -> Response:
    return page(request, "reset_invalid.html", 400)


@router.get("/password-reset/{token}")
def reset_form(request: Request, token: str) -> Response:
    if accounts.reset_target(engine_of(request), token) is None:
        return _reset_invalid(request)
    return _presession_page(request, "reset_form.html", action=f"/password-reset/{token}")


@router.post("/password-reset/{token}", dependencies=[Depends(require_login_csrf)])
def reset_submit(
    request: Request, token: str, new_password: FormText = "", new_password2: FormText = ""
) -> Response:
    engine = engine_of(request)
    limited = over_limit(request, (ratelimit.RESET_IP, client_ip(request)))
    if limited is not None:
        return too_many(request, limited.retry_after)
    target = accounts.reset_target(engine, token)
    if target is None:
        accounts.audit(
            engine, "anonymous", [("password-reset", DENIED, "invalid, used or expired link")]
        )
        return _reset_invalid(request)
    error = ""
    if new_password != new_password2:
        error = "passwords_differ"
    else:
        try:
            done = accounts.use_reset(engine, token, new_password)
        except PasswordPolicyError as exc:
            error = exc.code
        else:
            if done is None:  # lost a race with another use of the same link
                return _reset_invalid(request)
            accounts.audit(
                engine, done, [("password-reset", SUCCESS, "password set from reset link")]
            )
            return redirect(login_url(notice="reset_done"))
    return _presession_page(
        request, "reset_form.html", 400, action=f"/password-reset/{token}", error=error
    )
