"""FastAPI dependencies for pages: who is signed in, and whether a form is genuine.

``current_account`` (and ``current_session``, which also gives the session) send
the browser to the login page when there is no live session, apply the inactivity
limit of the account's kind (staff 15 minutes, patients 30, from Settings), and
send staff, and patients who turned codes on, to the second-factor page until the
session has passed it.  ``require_csrf`` guards every state-changing form of a
signed-in person; ``require_login_csrf`` the forms shown before sign-in.

Failures are exceptions that the page route class (``web/render.py``) turns into a
redirect or an error page, so handlers stay straight-line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from medcard import clock
from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.access.subjects import active_emergency_patients, token_claims
from medcard.audit.recorder import SUCCESS
from medcard.auth import accounts, csrf, ratelimit
from medcard.auth.accounts import Account
from medcard.auth.sessions import (
    COOKIE_NAME,
    MICROS,
    SessionInfo,
    create_session,
    destroy_by_hash,
    destroy_session,
    load_session,
)
from medcard.config import Settings
from medcard.fhir.store.repository import Repository

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from medcard.web.app import Services


class LoginRequired(Exception):  # noqa: N818 - a control-flow signal, not an error
    """No live session: go to the login page (``expired`` when it ran out from inactivity)."""

    def __init__(self, next_path: str = "", *, expired: bool = False) -> None:
        super().__init__("login required")
        self.next_path = next_path
        self.expired = expired


class SecondFactorRequired(Exception):  # noqa: N818 - a control-flow signal
    """Signed in with a password, but this account needs a TOTP code first."""

    def __init__(self, next_path: str = "") -> None:
        super().__init__("second factor required")
        self.next_path = next_path


class CsrfError(Exception):
    """The form's CSRF token is missing or wrong: answered with a 403 page."""


@dataclass(frozen=True)
class SignedIn:
    account: Account
    session: SessionInfo
    cookie: str

    @property
    def csrf(self) -> str:
        return self.session.csrf


def services(request: Request) -> Services:
    return cast("Services", request.app.state.services)


def settings_of(request: Request) -> Settings:
    return services(request).settings


def engine_of(request: Request) -> Engine:
    return services(request).engine


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def over_limit(request: Request, *checks: tuple[ratelimit.Rule, str]) -> ratelimit.Hit | None:
    """Count this request against each (rule, who); the first limit it exceeds, if any.

    The first hit over a limit in its window is audited once ("rate limit ... exceeded"),
    not every refused one after it (issue 14 item 5)."""
    limiter = services(request).limiter
    for rule, who in checks:
        if not who:
            continue
        hit = limiter.hit(rule, who)
        if hit.allowed:
            continue
        if hit.count == rule.limit + 1:
            accounts.audit(
                engine_of(request),
                "anonymous",
                [
                    (
                        "rate-limit",
                        "4",
                        f"{rule.name} exceeded by {who}: {rule.limit} per {rule.window_s} s",
                    )
                ],
            )
        return hit
    return None


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:255]


def idle_limit_seconds(settings: Settings, account: Account) -> int:
    minutes = settings.staff_idle_minutes if account.is_staff else settings.patient_idle_minutes
    return minutes * 60


def safe_next(path: str | None) -> str:
    """Only local paths: a ``next`` parameter must not become an open redirect.

    Judged on the decoded text (``/%5Cevil.example`` is ``/\\evil.example``, which
    browsers read as another host): a single ``/`` first, no ``//`` or ``/\\``, no
    backslash or control character anywhere (browsers drop tabs), however often encoded."""
    if not path:
        return ""
    decoded, previous = path, ""
    while decoded != previous:  # %255C -> %5C -> \\
        previous, decoded = decoded, unquote(decoded)
    if not decoded.startswith("/") or decoded.startswith(("//", "/\\")):
        return ""
    if any(c == "\\" or ord(c) < 32 or ord(c) == 127 for c in decoded):
        return ""
    return path


def _here(request: Request) -> str:
    if request.method != "GET":
        return ""
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


def _load(request: Request) -> SignedIn:
    """The live session and its account (cached on the request); no second-factor check."""
    cached = getattr(request.state, "signed_in", None)
    if isinstance(cached, SignedIn):
        return cached
    svc = services(request)
    engine, settings = svc.engine, svc.settings
    cookie = request.cookies.get(COOKIE_NAME, "")
    if not cookie:
        raise LoginRequired(_here(request))
    expired: list[SessionInfo] = []
    longest = max(settings.staff_idle_minutes, settings.patient_idle_minutes) * 60
    info = load_session(engine, cookie, idle_seconds=longest, on_expired=expired.append)
    if info is None:
        for gone in expired:
            _record_logoff(engine, gone)
        raise LoginRequired(_here(request), expired=bool(expired))
    account = accounts.get(engine, info.account_id)
    if account is None or not account.active:
        destroy_by_hash(engine, info.id_hash)
        raise LoginRequired(_here(request))
    if info.idle_micros() > idle_limit_seconds(settings, account) * MICROS:
        destroy_by_hash(engine, info.id_hash)
        _record_logoff(engine, info)
        raise LoginRequired(_here(request), expired=True)
    signed = SignedIn(account, info, cookie)
    request.state.signed_in = signed
    return signed


def _record_logoff(engine: Engine, info: SessionInfo) -> None:
    idle_minutes = (clock.now_micros() - info.last_seen) // (60 * MICROS)
    accounts.audit(
        engine,
        f"Account/{info.account_id}",
        [("logout", SUCCESS, f"automatic logoff after {idle_minutes} min of inactivity")],
    )


def pending_session(request: Request) -> SignedIn:
    """A live session that may still lack its second factor (the MFA pages use it)."""
    return _load(request)


def current_session(request: Request) -> SignedIn:
    """A live, fully signed-in session: password and, where required, the second factor."""
    signed = _load(request)
    if signed.account.needs_mfa and not signed.session.mfa_ok:
        raise SecondFactorRequired(_here(request))
    return signed


def current_account(request: Request) -> Account:
    """The signed-in account (see :func:`current_session`); last_seen is refreshed."""
    return current_session(request).account


async def _submitted_token(request: Request) -> str:
    header = request.headers.get(csrf.HEADER, "")
    if header:
        return header
    form = await request.form()  # cached by Starlette: the handler's Form() reads it again
    value = form.get(csrf.FIELD, "")
    return value if isinstance(value, str) else ""


async def require_csrf(request: Request) -> None:
    """Refuse a state-changing request of a signed-in person without its session's token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    token = await _submitted_token(request)
    signed = await run_in_threadpool(_load, request)
    if not signed.session.csrf_matches(token):
        raise CsrfError


async def require_login_csrf(request: Request) -> None:
    """Double-submit check for forms shown before sign-in (login, password reset)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    token = await _submitted_token(request)
    if not csrf.tokens_match(request.cookies.get(csrf.PRESESSION_COOKIE), token):
        raise CsrfError


def login_url(next_path: str = "", **flags: str) -> str:
    params = [f"{k}={quote(v)}" for k, v in flags.items() if v]
    if safe_next(next_path):
        params.append("next=" + quote(next_path, safe=""))
    return "/login" + ("?" + "&".join(params) if params else "")


# -- reading and writing the record from pages -------------------------------------------


def page_context(request: Request, account: Account, purpose: str = "") -> AccessContext:
    """The signed-in person's access context, built exactly as a bearer token of theirs
    would be (role, organisations, dependants, emergency accesses), so pages pass the
    same gate and audit as the FHIR API.  Scopes are the role's ceiling: the role's
    permissions, not the scope, decide what a page may read or write."""
    engine = engine_of(request)
    claims = token_claims(engine, account.role, account.fhir_ref, account.organization_ref)
    patients = set(claims.get("patients") or [])
    if account.role == Role.PATIENT and account.fhir_ref.startswith("Patient/"):
        patients.add(account.fhir_ref.split("/", 1)[1])
    actor = account.fhir_ref or account.actor
    scope = "patient/*.cruds" if account.role == Role.PATIENT else "user/*.cruds"
    return AccessContext(
        actor=actor,
        scopes=Scopes.parse(scope),
        client_id="web",
        patient_ids=frozenset(patients),
        purpose=purpose,
        role=account.role,
        organizations=frozenset(claims.get("orgs") or []),
        account_id=account.id,
        emergency_patients=(
            active_emergency_patients(engine, actor)
            if account.role == Role.PRACTITIONER
            else frozenset()
        ),
    )


@contextmanager
def page_repository(request: Request, account: Account, purpose: str = "") -> Iterator[Repository]:
    """A repository bound to the signed-in person; its audit entries are written on exit."""
    repo = Repository(engine_of(request), page_context(request, account, purpose))
    try:
        yield repo
    finally:
        repo.close()


def fresh_session(request: Request, account: Account, *, mfa_ok: bool = False) -> str:
    """A new session for a sign-in (password, registration or SSO); returns its cookie.

    A new session id at every sign-in (session fixation): the browser's old session ends.
    """
    engine, settings = engine_of(request), settings_of(request)
    old = request.cookies.get(COOKIE_NAME, "")
    if old:
        destroy_session(engine, old)
    cookie, _ = create_session(
        engine,
        account.id,
        mfa_ok=mfa_ok,
        user_agent=user_agent(request),
        ip=client_ip(request),
        lifetime_seconds=settings.session_max_hours * 3600,
    )
    return cookie
