"""The session API shared with the SSO login: create, load, rotate, destroy, cookie."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.responses import Response

from medcard.auth.accounts import Account
from medcard.auth.sessions import (
    COOKIE_NAME,
    SessionInfo,
    create_session,
    destroy_session,
    load_session,
    rotate_session,
    set_session_cookie,
)
from tests.auth.conftest import Clock, sign_in


def test_create_load_destroy(engine: Engine, make_account: Callable[..., Account]) -> None:
    account = make_account()
    cookie, csrf = create_session(engine, account.id, mfa_ok=True, user_agent="UA", ip="10.0.0.1")
    info = load_session(engine, cookie, idle_seconds=60)
    assert info is not None
    assert (info.account_id, info.mfa_ok, info.csrf, info.user_agent, info.ip) == (
        account.id,
        True,
        csrf,
        "UA",
        "10.0.0.1",
    )
    assert info.csrf_matches(csrf)
    assert not info.csrf_matches("")
    assert not info.csrf_matches(csrf[:-1])
    destroy_session(engine, cookie)
    assert load_session(engine, cookie, idle_seconds=60) is None


def test_idle_sessions_are_dropped_and_reported(
    engine: Engine, make_account: Callable[..., Account], fake_clock: Clock
) -> None:
    cookie, _ = create_session(engine, make_account().id, mfa_ok=False)
    fake_clock.advance(59)
    assert load_session(engine, cookie, idle_seconds=60) is not None
    fake_clock.advance(61)
    gone: list[SessionInfo] = []
    assert load_session(engine, cookie, idle_seconds=60, on_expired=gone.append) is None
    assert len(gone) == 1
    assert load_session(engine, cookie, idle_seconds=10**6) is None  # deleted, not just hidden


def test_rotation_gives_a_new_id_and_token(
    engine: Engine, make_account: Callable[..., Account]
) -> None:
    cookie, csrf = create_session(engine, make_account().id, mfa_ok=False)
    old = load_session(engine, cookie, idle_seconds=60)
    assert old is not None
    new_cookie, new_csrf = rotate_session(engine, old, mfa_ok=True)
    assert (new_cookie, new_csrf) != (cookie, csrf)
    assert load_session(engine, cookie, idle_seconds=60) is None
    new = load_session(engine, new_cookie, idle_seconds=60)
    assert new is not None
    assert new.mfa_ok
    assert new.expires == old.expires  # rotation does not extend the absolute lifetime


def test_set_session_cookie(settings: object) -> None:
    response = Response()
    set_session_cookie(response, "value", settings, https=True)  # type: ignore[arg-type]
    header = response.headers["set-cookie"]
    assert header.startswith(f"{COOKIE_NAME}=value")
    assert "HttpOnly" in header
    assert "Secure" in header
    assert "samesite=lax" in header.lower()


def test_sessions_end_after_their_absolute_lifetime(
    web: TestClient, engine: Engine, make_account: Callable[..., Account], fake_clock: Clock
) -> None:
    sign_in(web, engine, make_account())
    for _ in range(28):  # active every 25 minutes: 11 h 40 min
        fake_clock.advance(25 * 60)
        assert web.get("/me").status_code == 200
    fake_clock.advance(25 * 60)  # past 12 hours
    assert web.get("/me").status_code == 303
