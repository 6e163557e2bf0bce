"""The login page: success, failure without enumeration, lockout, cookies, fixation, idling."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from medcard.auth import accounts, passwords
from medcard.auth.accounts import Account, Role
from medcard.auth.sessions import COOKIE_NAME
from medcard.db.tables import accounts as accounts_table
from medcard.db.tables import sessions
from medcard.web.app import create_app
from tests.auth.conftest import PASSWORD, Clock, audit_rows, csrf_of, login, sign_in

GENERIC = "Неверный логин или пароль"


def session_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(sessions))]


def test_patient_signs_in_and_sees_their_page(
    web: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(display_name="Иванова Анна Петровна", fhir_ref="Patient/p-1")
    r = login(web, "  " + account.login.upper())
    assert r.status_code == 303
    assert r.headers["location"] == "/card"  # a patient lands on their card
    me = web.get("/me")
    assert me.status_code == 200
    assert "Иванова Анна Петровна" in me.text
    assert "Пациент" in me.text
    assert "Patient/p-1" in me.text
    assert 'action="/logout"' in me.text


def test_staff_home_names_role_and_organisation(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account(
        Role.REGISTRAR, totp=True, organization_ref="Organization/org-77-gp12", region="77"
    )
    sign_in(web, engine, account)
    me = web.get("/me?lang=en")
    assert "Registrar" in me.text
    assert "Organization/org-77-gp12" in me.text


def test_wrong_password_gives_the_generic_message(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    r = login(web, account.login, "not the password")
    assert r.status_code == 401
    assert GENERIC in r.text
    assert COOKIE_NAME not in r.headers.get("set-cookie", "")
    denied = audit_rows(engine, "login")
    assert [(e["actor"], e["outcome"], e["action"]) for e in denied] == [
        (f"Account/{account.id}", "4", "E")
    ]
    assert "not the password" not in str(denied)


def _normalised(html: str) -> str:
    return html.replace(csrf_of(html), "TOKEN")


def test_unknown_login_and_wrong_password_look_the_same(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    wrong = login(web, account.login, "not the password")
    unknown = login(web, "nobody@example.org", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert _normalised(wrong.text) == _normalised(unknown.text)
    assert GENERIC in unknown.text
    entry = audit_rows(engine, "login")[-1]
    assert entry["actor"] == "anonymous"
    assert "nobody@example.org" not in entry["detail"]  # a fingerprint, not the text


def test_every_refusal_costs_one_argon2_verification(
    web: TestClient,
    engine: Engine,
    make_account: Callable[..., Account],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same work whether the account exists, is locked, deactivated or just mistyped."""
    hasher = passwords.HASHER
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(hasher, name)

        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return hasher.verify(stored, password)

    existing = make_account()
    gone = make_account()
    accounts.deactivate(engine, gone.id)
    locked = make_account()
    with engine.begin() as conn:
        conn.execute(
            update(accounts_table)
            .where(accounts_table.c.id == locked.id)
            .values(locked_until=2**62)
        )
    monkeypatch.setattr(passwords, "HASHER", Counting())
    for who, password in [
        (existing.login, "not the password"),
        ("nobody@example.org", "not the password"),
        ("not even a login", "not the password"),
        (gone.login, PASSWORD),
        (locked.login, PASSWORD),
    ]:
        calls.clear()
        r = login(web, who, password)
        assert r.status_code == 401, who
        assert len(calls) == 1, who


def test_lockout_after_five_failures_with_backoff(
    web: TestClient, engine: Engine, make_account: Callable[..., Account], fake_clock: Clock
) -> None:
    account = make_account()
    for _ in range(4):
        assert login(web, account.login, "not the password").status_code == 401
    assert accounts.get(engine, account.id).locked_until == 0  # type: ignore[union-attr]
    login(web, account.login, "not the password")  # the fifth
    locked = accounts.get(engine, account.id)
    assert locked is not None
    assert locked.locked_until > 0
    lockouts = audit_rows(engine, "lockout")
    assert len(lockouts) == 1
    assert "60 s" in lockouts[0]["detail"]

    # Locked: even the right password is refused, with the same page as an unknown login.
    refused = login(web, account.login, PASSWORD)
    unknown = login(web, "nobody@example.org", PASSWORD)
    assert refused.status_code == unknown.status_code == 401
    assert _normalised(refused.text) == _normalised(unknown.text)

    fake_clock.advance(61)
    login(web, account.login, "not the password")  # sixth failure: twice as long
    assert "120 s" in audit_rows(engine, "lockout")[-1]["detail"]
    fake_clock.advance(119)
    assert login(web, account.login, PASSWORD).status_code == 401
    fake_clock.advance(2)
    r = login(web, account.login, PASSWORD)
    assert r.status_code == 303
    assert accounts.get(engine, account.id).failed_logins == 0  # type: ignore[union-attr]


def test_session_cookie_flags_on_http(
    web: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    r = login(web, account.login)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie
    assert "Max-Age" not in cookie  # a browser-session cookie; the server ends sessions


def test_session_cookie_is_secure_on_https(
    new_client: Callable[..., TestClient], make_account: Callable[..., Account]
) -> None:
    account = make_account()
    r = login(new_client("https://testserver"), account.login)
    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"]


def test_session_cookie_is_secure_when_settings_say_so(
    settings: Any,
    engine: Engine,
    new_client: Callable[..., TestClient],
    make_account: Callable[..., Account],
) -> None:
    secure_app = create_app(settings.model_copy(update={"secure_cookies": True}), engine)
    account = make_account()
    c = new_client(app_=secure_app)
    page = c.get("/login")
    assert "Secure" in page.headers["set-cookie"]  # the pre-session CSRF cookie too
    # The http client would not send a Secure cookie back; pass the token by hand.
    token = csrf_of(page.text)
    c.cookies.set("medcard_csrf", token)
    r = c.post("/login", data={"login": account.login, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"]


def test_only_the_cookie_hash_is_stored(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    login(web, account.login)
    cookie = web.cookies[COOKIE_NAME]
    assert len(cookie) >= 43  # 32 random bytes, base64url
    (row,) = session_rows(engine)
    assert row["id_hash"] == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in str(row)


def test_signing_in_replaces_a_planted_session_id(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    """Session fixation: whatever session id the browser had, sign-in issues a new one."""
    victim = make_account()
    attacker = make_account()
    login(web, attacker.login)
    planted = web.cookies[COOKIE_NAME]
    r = login(web, victim.login)
    assert r.status_code == 303
    fresh = web.cookies[COOKIE_NAME]
    assert fresh != planted
    assert [row["account_id"] for row in session_rows(engine)] == [victim.id]
    web.cookies.clear()
    web.cookies.set(COOKIE_NAME, planted)
    assert web.get("/me").status_code == 303  # the old id is dead


def test_pages_need_a_session(web: TestClient) -> None:
    r = web.get("/me")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fme"
    web.cookies.set(COOKIE_NAME, "made-up")
    assert web.get("/me").status_code == 303


def test_next_is_followed_only_within_the_site(
    web: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    assert login(web, account.login, next="/me/password").headers["location"] == "/me/password"
    assert login(web, account.login, next="/me?q=%D0%98").headers["location"] == "/me?q=%D0%98"
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        # issue 17: judged decoded, however often encoded; browsers drop tabs
        "/%5Cevil.example",
        "/%255Cevil.example",
        "/%2F/evil.example",
        "/%2f%2fevil.example",
        "/\t/evil.example",
        "/%09/evil.example",
    ]:
        assert login(web, account.login, next=evil).headers["location"] == "/card"


@pytest.mark.parametrize(
    ("role", "limit_minutes"), [(Role.PATIENT, 30), (Role.PRACTITIONER, 15), (Role.REVIEWER, 15)]
)
def test_automatic_logoff_after_inactivity(
    web: TestClient,
    engine: Engine,
    make_account: Callable[..., Account],
    fake_clock: Clock,
    role: Role,
    limit_minutes: int,
) -> None:
    account = make_account(role, totp=role is not Role.PATIENT)
    sign_in(web, engine, account)
    fake_clock.advance(limit_minutes * 60 - 30)
    assert web.get("/me").status_code == 200  # activity resets the idle timer
    fake_clock.advance(limit_minutes * 60 - 30)
    assert web.get("/me").status_code == 200
    fake_clock.advance(limit_minutes * 60 + 1)
    r = web.get("/me")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?expired=1")
    assert session_rows(engine) == []
    logoff = audit_rows(engine, "logout")[-1]
    assert logoff["actor"] == f"Account/{account.id}"
    assert "inactivity" in logoff["detail"]
    assert "бездействия" in web.get(r.headers["location"]).text


def test_inactivity_limit_comes_from_settings(
    settings: Any,
    engine: Engine,
    new_client: Callable[..., TestClient],
    make_account: Callable[..., Account],
) -> None:
    strict = create_app(settings.model_copy(update={"patient_idle_minutes": 1}), engine)
    c = new_client(app_=strict)
    sign_in(c, engine, make_account())
    with engine.begin() as conn:  # as if the last request was two minutes ago
        conn.execute(update(sessions).values(last_seen=sessions.c.last_seen - 120_000_000))
    assert c.get("/me").status_code == 303


def test_logout_ends_the_session(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    sign_in(web, engine, account)
    cookie = web.cookies[COOKIE_NAME]
    r = web.post("/logout", data={"csrf_token": csrf_of(web.get("/me").text)})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?notice=signed_out"
    assert f'{COOKIE_NAME}=""' in r.headers["set-cookie"]
    assert session_rows(engine) == []
    web.cookies.clear()
    web.cookies.set(COOKIE_NAME, cookie)
    assert web.get("/me").status_code == 303
    assert [e["outcome"] for e in audit_rows(engine, "logout")] == ["0"]


def test_english_by_query_then_by_cookie(web: TestClient) -> None:
    assert "Вход" in web.get("/login").text
    r = web.get("/login?lang=en")
    assert "Sign in" in r.text
    assert '<html lang="en">' in r.text
    assert "medcard_lang=en" in r.headers["set-cookie"]
    assert "Sign in" in web.get("/login").text  # remembered


def test_a_failing_page_shows_an_error_page_not_a_trace(
    web: TestClient, make_account: Callable[..., Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(accounts, "authenticate", broken)
    r = login(web, "someone@example.org")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/html")
    assert "secret internals" not in r.text
    assert "Traceback" not in r.text
    assert "Ошибка" in r.text


def test_pages_carry_security_headers(web: TestClient) -> None:
    r = web.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_the_stylesheet_is_served(web: TestClient) -> None:
    r = web.get("/static/medcard.css")
    assert r.status_code == 200
    assert "@media" in r.text
