"""Changing a password, and resetting a forgotten one with a single-use, expiring link."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard.auth import accounts
from medcard.auth.accounts import Account
from medcard.auth.sessions import COOKIE_NAME
from medcard.db.tables import password_resets
from medcard.web.app import create_app
from tests.auth.conftest import PASSWORD, Clock, audit_rows, csrf_of, login, sign_in

NEW = "a brand new passphrase"
LINK = re.compile(r"(http://testserver/password-reset/[A-Za-z0-9_\-]+)")


def change(c: TestClient, current: str, new: str, again: str | None = None) -> Any:
    page = c.get("/me/password")
    assert page.status_code == 200
    return c.post(
        "/me/password",
        data={
            "current_password": current,
            "new_password": new,
            "new_password2": new if again is None else again,
            "csrf_token": csrf_of(page.text),
        },
    )


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        ("wrong password!", NEW, None, "Текущий пароль указан неверно"),
        (PASSWORD, NEW, NEW + "x", "Новые пароли не совпадают"),
        (PASSWORD, "short", None, "не короче 10 символов"),
        (PASSWORD, "me@example.org", None, "не должен совпадать с логином"),
    ],
)
def test_password_change_is_refused_with_a_reason(
    web: TestClient,
    engine: Engine,
    make_account: Callable[..., Account],
    current: str,
    new: str,
    again: str | None,
    message: str,
) -> None:
    account = make_account(login="me@example.org")
    sign_in(web, engine, account)
    r = change(web, current, new, again)
    assert r.status_code == 400
    assert message in r.text
    assert accounts.authenticate(engine, account.login, PASSWORD).ok


def test_password_change_ends_other_sessions_and_renews_this_one(
    web: TestClient,
    new_client: Callable[..., TestClient],
    engine: Engine,
    make_account: Callable[..., Account],
) -> None:
    account = make_account()
    sign_in(web, engine, account)
    elsewhere = sign_in(new_client(), engine, account)
    before = web.cookies[COOKIE_NAME]
    r = change(web, PASSWORD, NEW)
    assert r.status_code == 303
    assert r.headers["location"] == "/me?notice=password"
    assert web.cookies[COOKIE_NAME] != before
    assert "Пароль изменён" in web.get("/me?notice=password").text
    assert elsewhere.get("/me").status_code == 303
    assert not accounts.authenticate(engine, account.login, PASSWORD).ok
    assert accounts.authenticate(engine, account.login, NEW).ok
    assert [e["outcome"] for e in audit_rows(engine, "password-change")] == ["0"]


def request_reset(c: TestClient, login_: str) -> Any:
    page = c.get("/password-reset")
    return c.post("/password-reset", data={"login": login_, "csrf_token": csrf_of(page.text)})


def reset_link(caplog: pytest.LogCaptureFixture) -> str:
    found = [m for r in caplog.records if (m := LINK.search(r.getMessage()))]
    assert found, "no reset link in the server log"
    return found[-1].group(1).removeprefix("http://testserver")


def set_new(c: TestClient, path: str, new: str = NEW, again: str | None = None) -> Any:
    page = c.get(path)
    assert page.status_code == 200, page.text
    return c.post(
        path,
        data={
            "new_password": new,
            "new_password2": new if again is None else again,
            "csrf_token": csrf_of(page.text),
        },
    )


def test_reset_link_goes_to_the_log_and_works_once(
    web: TestClient,
    engine: Engine,
    make_account: Callable[..., Account],
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = make_account()
    elsewhere = sign_in(TestClient(web.app, follow_redirects=False), engine, account)
    for _ in range(4):
        login(web, account.login, "forgotten it")
    with caplog.at_level(logging.WARNING, logger="medcard.auth"):
        r = request_reset(web, account.login)
    assert r.status_code == 200
    assert "журнал сервера" in r.text
    path = reset_link(caplog)
    assert path not in r.text  # not shown outside demo mode

    token = path.rsplit("/", 1)[1]
    with engine.connect() as conn:
        stored = conn.execute(select(password_resets.c.token_hash)).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest()

    assert set_new(web, path, NEW, "something else").status_code == 400  # still usable after
    r = set_new(web, path)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?notice=reset_done"
    assert accounts.authenticate(engine, account.login, NEW).ok
    assert accounts.get(engine, account.id).failed_logins == 0  # type: ignore[union-attr]
    assert elsewhere.get("/me").status_code == 303  # sessions ended

    again = web.get(path)
    assert again.status_code == 400
    assert "уже использована" in again.text
    replay = web.post(path, data={"new_password": "x" * 12, "new_password2": "x" * 12})
    assert replay.status_code == 403  # no CSRF token: refused before looking at the link
    page = web.get("/password-reset")
    replay = web.post(
        path,
        data={
            "new_password": "x" * 12,
            "new_password2": "x" * 12,
            "csrf_token": csrf_of(page.text),
        },
    )
    assert replay.status_code == 400
    assert accounts.authenticate(engine, account.login, NEW).ok
    assert [e["outcome"] for e in audit_rows(engine, "password-reset")] == ["0", "4"]


def test_reset_link_expires_after_30_minutes(
    web: TestClient,
    engine: Engine,
    make_account: Callable[..., Account],
    fake_clock: Clock,
) -> None:
    account = make_account()
    path = f"/password-reset/{accounts.create_reset(engine, account.id)}"
    fake_clock.advance(29 * 60)
    assert web.get(path).status_code == 200
    fake_clock.advance(2 * 60)
    r = web.get(path)
    assert r.status_code == 400
    assert "устарела" in r.text
    assert accounts.use_reset(engine, path.rsplit("/", 1)[1], NEW) is None


def test_reset_request_reads_the_same_for_unknown_logins(
    web: TestClient,
    engine: Engine,
    make_account: Callable[..., Account],
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = make_account()
    with caplog.at_level(logging.WARNING, logger="medcard.auth"):
        known = request_reset(web, account.login)
        unknown = request_reset(web, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    assert len([r for r in caplog.records if LINK.search(r.getMessage())]) == 1
    assert [e["actor"] for e in audit_rows(engine, "password-reset-request")] == [
        f"Account/{account.id}",
        "anonymous",
    ]


def test_demo_mode_shows_the_link_on_the_page(
    settings: Any,
    engine: Engine,
    new_client: Callable[..., TestClient],
    make_account: Callable[..., Account],
) -> None:
    demo = new_client(app_=create_app(settings.model_copy(update={"demo_mode": True}), engine))
    account = make_account()
    r = request_reset(demo, account.login)
    assert "Демонстрационный режим" in r.text
    m = LINK.search(r.text)
    assert m
    assert set_new(demo, m.group(1).removeprefix("http://testserver")).status_code == 303
    assert accounts.authenticate(engine, account.login, NEW).ok


def test_a_made_up_link_is_refused(web: TestClient) -> None:
    r = web.get("/password-reset/not-a-real-token")
    assert r.status_code == 400
    assert "Запросить новую ссылку" in r.text
