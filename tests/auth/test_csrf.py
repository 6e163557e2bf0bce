"""Every state-changing form refuses a request without its CSRF token (403 page, no effect)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.accounts import Account, Role
from medcard.auth.sessions import COOKIE_NAME
from tests.auth.conftest import PASSWORD, audit_rows, code_for, csrf_of, login, sign_in

# Forms of a signed-in (or half signed-in) person: (path, role, totp, fields).
SESSION_FORMS = [
    ("/logout", Role.PATIENT, False, {}),
    (
        "/me/password",
        Role.PATIENT,
        False,
        {"current_password": PASSWORD, "new_password": "N" * 12, "new_password2": "N" * 12},
    ),
    ("/me/security/totp/start", Role.PATIENT, False, {}),
    ("/me/security/totp/confirm", Role.PATIENT, False, {"code": "CODE"}),
    ("/me/security/totp/disable", Role.PATIENT, True, {"code": "CODE"}),
    ("/login/mfa", Role.PRACTITIONER, True, {"code": "CODE"}),
    ("/login/mfa/enrol", Role.PRACTITIONER, False, {"code": "CODE"}),
]


@pytest.mark.parametrize("bad_token", [None, "", "wrong-token-of-some-length-000000000000"])
@pytest.mark.parametrize(
    ("path", "role", "totp", "fields"), SESSION_FORMS, ids=[form[0] for form in SESSION_FORMS]
)
def test_signed_in_forms_need_the_session_token(
    web: TestClient,
    engine: Engine,
    make_account: Callable[..., Account],
    path: str,
    role: Role,
    totp: bool,
    fields: dict[str, str],
    bad_token: str | None,
) -> None:
    account = make_account(role, totp=totp)
    if path.startswith("/login/mfa"):
        login(web, account.login)  # half signed in: password only
    else:
        sign_in(web, engine, account)
    before = accounts.get(engine, account.id)
    data = dict(fields)
    if "code" in data:
        data["code"] = code_for(before, 1) if before and before.totp_secret else "123456"
    if bad_token is not None:
        data["csrf_token"] = bad_token
    r = web.post(path, data=data)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "Форма устарела" in r.text
    # Nothing happened: same account state, session still there.
    after = accounts.get(engine, account.id)
    assert after == before
    assert web.cookies.get(COOKIE_NAME)
    expected = 303 if path.startswith("/login/mfa") else 200
    assert web.get("/me").status_code == expected


def test_a_token_from_another_session_is_refused(
    web: TestClient,
    new_client: Callable[..., TestClient],
    engine: Engine,
    make_account: Callable[..., Account],
) -> None:
    victim = make_account()
    attacker = make_account()
    sign_in(web, engine, victim)
    other = new_client()
    sign_in(other, engine, attacker)
    stolen_shape = csrf_of(other.get("/me").text)
    assert web.post("/logout", data={"csrf_token": stolen_shape}).status_code == 403


def test_the_token_may_come_as_a_header(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    sign_in(web, engine, make_account())
    token = csrf_of(web.get("/me").text)
    r = web.post("/logout", headers={"X-CSRF-Token": token})
    assert r.status_code == 303


PRESESSION_FORMS = ["/login", "/password-reset", "/password-reset/TOKEN"]


@pytest.mark.parametrize("path", PRESESSION_FORMS)
@pytest.mark.parametrize("case", ["no field", "no cookie", "mismatch"])
def test_forms_before_sign_in_use_a_double_submit_token(
    web: TestClient,
    engine: Engine,
    make_account: Callable[..., Account],
    path: str,
    case: str,
) -> None:
    """Login CSRF included: a cross-site form cannot sign the victim in as the attacker."""
    account = make_account()
    if "TOKEN" in path:
        path = path.replace("TOKEN", accounts.create_reset(engine, account.id))
    page = web.get(path)
    assert page.status_code == 200
    token = csrf_of(page.text)
    data = {
        "login": account.login,
        "password": PASSWORD,
        "new_password": "N" * 12,
        "new_password2": "N" * 12,
        "csrf_token": token,
    }
    if case == "no field":
        del data["csrf_token"]
    elif case == "no cookie":
        web.cookies.clear()
    else:
        data["csrf_token"] = token[::-1]
    r = web.post(path, data=data)
    assert r.status_code == 403
    assert "Форма устарела" in r.text
    assert COOKIE_NAME not in web.cookies
    assert accounts.authenticate(engine, account.login, PASSWORD).ok  # password unchanged
    assert audit_rows(engine, "password-reset-request") == []
