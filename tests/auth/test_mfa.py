"""Second factor: mandatory TOTP for staff, optional for patients, no replay, fixation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import accounts, mfa
from medcard.auth.accounts import STAFF_ROLES, Account, Role
from medcard.auth.sessions import COOKIE_NAME
from medcard.web.homes import HOMES
from tests.auth.conftest import (
    Clock,
    audit_rows,
    code_for,
    csrf_of,
    login,
    sign_in,
    submit_code,
)


def fresh(engine: Engine, account: Account) -> Account:
    found = accounts.get(engine, account.id)
    assert found is not None
    return found


@pytest.mark.parametrize("role", sorted(STAFF_ROLES))
def test_staff_cannot_reach_their_page_before_the_code(
    web: TestClient, engine: Engine, make_account: Callable[..., Account], role: Role
) -> None:
    account = make_account(role, totp=True)
    r = login(web, account.login)
    assert r.status_code == 303
    assert r.headers["location"] == "/login/mfa"
    for path in ["/me", "/me/password", "/me/security"]:
        blocked = web.get(path)
        assert blocked.status_code == 303, path
        assert blocked.headers["location"].startswith("/login/mfa")
    r = submit_code(web, "/login/mfa", code_for(fresh(engine, account)))
    assert r.status_code == 303
    assert r.headers["location"] == HOMES[role]
    assert web.get("/me").status_code == 200


def test_staff_without_totp_must_enrol_first(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.PRACTITIONER)
    login(web, account.login)
    r = web.get("/login/mfa")
    assert r.status_code == 303
    assert r.headers["location"] == "/login/mfa/enrol"
    assert web.get("/me").status_code == 303
    page = web.get("/login/mfa/enrol")
    pending = fresh(engine, account)
    assert pending.totp_secret
    assert not pending.totp_enabled
    assert pending.totp_secret in page.text
    assert "otpauth://totp/" in page.text
    assert web.get("/login/mfa/enrol").text.count(pending.totp_secret) >= 1  # same on reload
    assert fresh(engine, account).totp_secret == pending.totp_secret

    wrong = web.post("/login/mfa/enrol", data={"code": "000000", "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 401
    assert not fresh(engine, account).totp_enabled
    r = submit_code(web, "/login/mfa/enrol", code_for(pending))
    assert r.status_code == 303
    assert fresh(engine, account).totp_enabled
    assert web.get("/me").status_code == 200
    assert [e["outcome"] for e in audit_rows(engine, "mfa-enrol")] == ["4", "0"]


def test_a_code_cannot_be_used_twice(
    web: TestClient,
    new_client: Callable[..., TestClient],
    engine: Engine,
    make_account: Callable[..., Account],
) -> None:
    account = make_account(Role.REVIEWER, totp=True)
    code = code_for(account)
    login(web, account.login)
    assert submit_code(web, "/login/mfa", code).status_code == 303
    other = new_client()
    login(other, account.login)
    replay = submit_code(other, "/login/mfa", code)
    assert replay.status_code == 401
    assert other.get("/me").status_code == 303
    assert audit_rows(engine, "mfa")[-1]["outcome"] == "4"


def test_an_older_code_is_refused_after_a_newer_one(
    engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.PRACTITIONER, totp=True)
    assert accounts.accept_totp(engine, account, code_for(account))
    previous = code_for(account, -1)
    assert not accounts.accept_totp(engine, fresh(engine, account), previous)


def test_codes_of_adjacent_steps_are_accepted_and_far_ones_are_not(
    engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.PRACTITIONER, totp=True)
    secret = account.totp_secret
    assert secret
    now = mfa.current_step()
    assert mfa.matching_step(secret, mfa.code_at(secret, now - 1), after_step=0) == now - 1
    assert mfa.matching_step(secret, mfa.code_at(secret, now + 1), after_step=0) == now + 1
    assert mfa.matching_step(secret, mfa.code_at(secret, now - 3), after_step=0) is None
    assert mfa.matching_step(secret, "12345", after_step=0) is None
    assert mfa.matching_step(secret, "abcdef", after_step=0) is None


def test_second_factor_starts_a_new_session(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.ORG_ADMIN, totp=True)
    login(web, account.login)
    pending = web.cookies[COOKIE_NAME]
    submit_code(web, "/login/mfa", code_for(account))
    signed = web.cookies[COOKIE_NAME]
    assert signed != pending
    web.cookies.clear()
    web.cookies.set(COOKIE_NAME, pending)
    assert web.get("/me").status_code == 303


def test_wrong_codes_lock_the_account(
    web: TestClient, engine: Engine, make_account: Callable[..., Account], fake_clock: Clock
) -> None:
    account = make_account(Role.PRACTITIONER, totp=True)
    login(web, account.login)
    page = web.get("/login/mfa")
    right = code_for(account)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(4):
        r = web.post("/login/mfa", data={"code": wrong, "csrf_token": csrf_of(page.text)})
        assert r.status_code == 401
    r = web.post("/login/mfa", data={"code": wrong, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?notice=mfa_locked"
    assert fresh(engine, account).locked_until > 0
    assert web.get("/login/mfa").status_code == 303  # the pending session is gone
    assert login(web, account.login).status_code == 401  # and the password is refused
    assert len(audit_rows(engine, "lockout")) == 1
    assert [e["outcome"] for e in audit_rows(engine, "mfa")] == ["4"] * 5


def test_patient_may_turn_codes_on_and_off(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    sign_in(web, engine, account)
    page = web.get("/me/security")
    assert page.status_code == 200
    r = web.post("/me/security/totp/start", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    page = web.get("/me/security")
    pending = fresh(engine, account)
    assert pending.totp_secret
    assert pending.totp_secret in page.text
    r = web.post(
        "/me/security/totp/confirm",
        data={"code": code_for(pending), "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 303
    assert fresh(engine, account).totp_enabled
    assert web.get("/me").status_code == 200  # this session proved the code

    other = TestClient(web.app, follow_redirects=False)
    r = login(other, account.login)
    assert r.headers["location"] == "/login/mfa"  # from now on the code is asked for
    assert other.get("/me").status_code == 303

    page = web.get("/me/security")
    r = web.post(
        "/me/security/totp/disable",
        data={"code": code_for(pending, 1), "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 303
    assert not fresh(engine, account).totp_enabled
    assert (
        login(TestClient(web.app, follow_redirects=False), account.login).headers["location"]
        == "/card"
    )


def test_staff_cannot_turn_codes_off(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.PRACTITIONER, totp=True)
    sign_in(web, engine, account)
    page = web.get("/me/security")
    web.post(
        "/me/security/totp/disable",
        data={"code": code_for(account, 1), "csrf_token": csrf_of(page.text)},
    )
    assert fresh(engine, account).totp_enabled
    with pytest.raises(accounts.AccountError):
        accounts.disable_totp(engine, account.id)
