"""Browser sessions: a random cookie value, of which the server keeps only the sha256.

A stolen database therefore yields no usable cookies.  Each session has its own
CSRF token, an inactivity limit enforced on every load (``idle_seconds``, chosen by
the caller per kind of account) and an absolute lifetime.  ``mfa_ok`` says that a
second factor was verified in this session (or asserted by an SSO provider).

Session fixation: sign-in, the second factor and a password change each start a
new session (:func:`rotate_session`) and end the old one.

This interface is shared with the OpenID Connect login (``auth/sso.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, insert, select, update

from medcard import clock
from medcard.config import Settings
from medcard.db.tables import sessions

if TYPE_CHECKING:
    from starlette.responses import Response

COOKIE_NAME = "medcard_session"
MICROS = 1_000_000
DEFAULT_LIFETIME_SECONDS = 12 * 3600
# last_seen is written at most this often; the idle limit is minutes, so this is noise.
TOUCH_EVERY_MICROS = 5 * MICROS


@dataclass(frozen=True)
class SessionInfo:
    id_hash: str
    account_id: str
    created: int
    last_seen: int  # before this load: how long the session had been idle
    expires: int
    mfa_ok: bool
    csrf: str
    user_agent: str
    ip: str

    def idle_micros(self, now: int | None = None) -> int:
        return (clock.now_micros() if now is None else now) - self.last_seen

    def csrf_matches(self, token: str) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), token.encode())


def hash_cookie(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def create_session(
    engine: Engine,
    account_id: str,
    *,
    mfa_ok: bool,
    user_agent: str = "",
    ip: str = "",
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
) -> tuple[str, str]:
    """Start a session; returns (cookie value, CSRF token).  Only the cookie's hash is stored."""
    expires = clock.now_micros() + lifetime_seconds * MICROS
    return _insert(engine, account_id, mfa_ok, user_agent, ip, expires)


def _insert(
    engine: Engine, account_id: str, mfa_ok: bool, user_agent: str, ip: str, expires: int
) -> tuple[str, str]:
    cookie_value = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = clock.now_micros()
    with engine.begin() as conn:
        conn.execute(
            insert(sessions).values(
                id_hash=hash_cookie(cookie_value),
                account_id=account_id,
                created=now,
                last_seen=now,
                expires=expires,
                mfa_ok=mfa_ok,
                csrf=csrf,
                user_agent=user_agent[:255],
                ip=ip[:64],
            )
        )
    return cookie_value, csrf


def load_session(
    engine: Engine,
    cookie_value: str,
    *,
    idle_seconds: int,
    on_expired: Callable[[SessionInfo], None] | None = None,
) -> SessionInfo | None:
    """The live session for a cookie, or None (unknown, expired or idle too long).

    A session found expired or idle is deleted (and passed to ``on_expired``, so the
    caller can record the automatic logoff).  Otherwise ``last_seen`` is refreshed;
    the returned ``last_seen`` is the value before this call, so a caller with a
    stricter limit for some accounts can still apply it.
    """
    if not cookie_value or len(cookie_value) > 128:
        return None
    id_hash = hash_cookie(cookie_value)
    now = clock.now_micros()
    with engine.connect() as conn:
        row = conn.execute(select(sessions).where(sessions.c.id_hash == id_hash)).first()
    if row is None:
        return None
    m = row._mapping
    info = SessionInfo(
        id_hash=m["id_hash"],
        account_id=m["account_id"],
        created=m["created"],
        last_seen=m["last_seen"],
        expires=m["expires"],
        mfa_ok=bool(m["mfa_ok"]),
        csrf=m["csrf"],
        user_agent=m["user_agent"],
        ip=m["ip"],
    )
    if now >= info.expires or info.idle_micros(now) > idle_seconds * MICROS:
        _delete(engine, id_hash)
        if on_expired is not None:
            on_expired(info)
        return None
    if now - info.last_seen >= TOUCH_EVERY_MICROS:
        with engine.begin() as conn:
            conn.execute(
                update(sessions).where(sessions.c.id_hash == id_hash).values(last_seen=now)
            )
    return info


def destroy_session(engine: Engine, cookie_value: str) -> None:
    if cookie_value:
        _delete(engine, hash_cookie(cookie_value))


def destroy_by_hash(engine: Engine, id_hash: str) -> None:
    _delete(engine, id_hash)


def destroy_account_sessions(engine: Engine, account_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.account_id == account_id))


def rotate_session(engine: Engine, old: SessionInfo, *, mfa_ok: bool) -> tuple[str, str]:
    """Replace a session by a new one (new id, new CSRF token), e.g. after the second factor.

    The new session keeps the old one's absolute expiry: rotating never extends it.
    """
    _delete(engine, old.id_hash)
    return _insert(engine, old.account_id, mfa_ok, old.user_agent, old.ip, old.expires)


def _delete(engine: Engine, id_hash: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))


def cookie_is_secure(settings: Settings, https: bool) -> bool:
    return settings.secure_cookies or https


def set_session_cookie(
    response: Response, cookie_value: str, settings: Settings, *, https: bool = False
) -> None:
    """HttpOnly, SameSite=Lax, Secure on https or when settings demand it; a browser-session
    cookie (no Max-Age): the server decides when the session ends."""
    response.set_cookie(
        COOKIE_NAME,
        cookie_value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(settings, https),
    )


def clear_session_cookie(response: Response, settings: Settings, *, https: bool = False) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(settings, https),
    )
