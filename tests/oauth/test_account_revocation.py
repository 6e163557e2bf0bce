"""Issue 14 item 4: signing out, deactivation, a password change and a role change end
the account's access and refresh tokens at once, through the account's revocation
epoch, without a database round trip per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from medcard.auth import accounts, epochs
from medcard.auth.oauth.clients import OAuthClient, create_client
from medcard.auth.oauth.revocation import unverified_claims
from medcard.auth.sessions import COOKIE_NAME, create_session
from medcard.auth.tokens import TokenIssuer
from tests.oauth.conftest import (
    DIARY_REDIRECT,
    PASSWORD,
    Browser,
    authorize,
    bearer,
    exchange,
    new_pkce,
)

NEW_PASSWORD = "совсем другой пароль для теста 43"


def _refresh(api: TestClient, client_id: str, token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    return api.post("/oauth/token", data=data)


def _assert_refused(api: TestClient, access_token: str, path: str) -> None:
    r = api.get(path, headers=bearer(access_token))
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "revoked" in body["issue"][0]["diagnostics"]


def _log_out(browser: Browser) -> None:
    r = browser.http.post("/logout", data={"csrf_token": browser.csrf})
    assert r.status_code == 303, r.text


EVENTS: dict[str, Callable[[Engine, Browser], None]] = {
    "logout": lambda engine, browser: _log_out(browser),
    "deactivation": lambda engine, browser: accounts.deactivate(engine, browser.account.id),
    "password change": lambda engine, browser: accounts.set_password(
        engine, browser.account.id, NEW_PASSWORD
    ),
}


@pytest.mark.parametrize("event_name", list(EVENTS))
def test_patient_event_ends_access_and_refresh_tokens_at_once(
    event_name: str,
    anna: Browser,
    full_grant: dict[str, Any],
    diary: OAuthClient,
    api: TestClient,
    engine: Engine,
    patients: dict[str, str],
) -> None:
    path = f"/fhir/Observation?patient={patients['anna']}"
    # In use a moment before: any cached "not revoked" answer is warm.
    assert api.get(path, headers=bearer(full_grant["access_token"])).status_code == 200
    EVENTS[event_name](engine, anna)
    _assert_refused(api, full_grant["access_token"], path)
    r = _refresh(api, diary.client_id, full_grant["refresh_token"])
    assert r.status_code == 400, r.text  # the token endpoint answers as RFC 6749 §5.2 says
    assert r.json()["error"] == "invalid_grant"


def test_role_change_ends_a_staff_token_at_once(app: Any, api: TestClient, engine: Engine) -> None:
    desk, _ = create_client(
        engine,
        "Регистратура онлайн",
        public=True,
        redirect_uris=[DIARY_REDIRECT],
        scope="openid fhirUser user/*.cruds",
    )
    account = accounts.create_account(
        engine, "desk@example.ru", PASSWORD, "registrar", display_name="Регистратор"
    )
    cookie, csrf = create_session(engine, account.id, mfa_ok=True)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as http:
        http.cookies.set(COOKIE_NAME, cookie)
        pkce = new_pkce()
        auth = authorize(
            Browser(http, csrf, account), desk.client_id, scope="user/*.cruds", pkce=pkce
        )
    r = exchange(api, desk.client_id, auth)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert unverified_claims(token)["role"] == "registrar"
    assert api.get("/fhir/Patient", headers=bearer(token)).status_code == 200
    accounts.set_role(engine, account.id, "reviewer")
    _assert_refused(api, token, "/fhir/Patient")


def test_epoch_check_refuses_tokens_not_stored_and_accepts_newer_ones(
    api: TestClient, engine: Engine, issuer: TokenIssuer, patients: dict[str, str]
) -> None:
    """The epoch alone decides, for any token naming the account (not only stored ones),
    and a token minted after the event carries the new epoch and works."""
    account = accounts.create_account(
        engine,
        "boris@example.ru",
        PASSWORD,
        "patient",
        fhir_ref=f"Patient/{patients['boris']}",
    )
    path = f"/fhir/Patient/{patients['boris']}"

    def mint() -> str:
        extra = {"account": account.id, "role": "patient", **epochs.mint_claim(engine, account.id)}
        return issuer.mint(
            f"Patient/{patients['boris']}", "patient/*.rs", patient=patients["boris"], extra=extra
        )

    old = mint()
    assert api.get(path, headers=bearer(old)).status_code == 200
    accounts.revoke_tokens(engine, account.id)
    _assert_refused(api, old, path)
    assert api.get(path, headers=bearer(mint())).status_code == 200


def test_the_epoch_is_read_once_per_ttl_not_per_request(
    api: TestClient, full_grant: dict[str, Any], engine: Engine, patients: dict[str, str]
) -> None:
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "token_epoch" in statement:
            reads.append(statement)

    path = f"/fhir/Observation?patient={patients['anna']}"
    epochs.forget(unverified_claims(full_grant["access_token"])["account"])
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert api.get(path, headers=bearer(full_grant["access_token"])).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(reads) == 1


def _redis_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _redis_up(), reason="no Redis at 127.0.0.1:6379")
def test_with_redis_a_revocation_elsewhere_reaches_this_process_at_once(
    engine: Engine, patients: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import redis

    url = "redis://127.0.0.1:6379/15"
    monkeypatch.setattr(epochs, "_publisher", {})  # publishing stays on for this test only
    epochs.configure(url)
    account = accounts.create_account(
        engine, "gleb@example.ru", PASSWORD, "patient", fhir_ref=f"Patient/{patients['anna']}"
    )
    cache = epochs.AccountEpochs(engine, ttl_s=60)  # far longer than the test
    assert cache.epoch(account.id) == 0
    # Another worker process revokes: its database write, then its message.
    with engine.begin() as conn:
        epochs.revoke_account_tokens(conn, account.id)
    assert cache.epoch(account.id) == 0  # still cached here: the TTL alone would wait
    other = redis.Redis.from_url(url)
    deadline = time.monotonic() + 5
    while cache.epoch(account.id) == 0:  # the listener may still be subscribing
        assert time.monotonic() < deadline, "the invalidation never arrived"
        other.publish(epochs.CHANNEL, account.id)
        time.sleep(0.05)
    assert cache.epoch(account.id) == 1
    # And this process tells the others when it revokes.
    heard = other.pubsub()
    heard.subscribe(epochs.CHANNEL)
    confirmed = heard.get_message(timeout=5)  # the server has us subscribed from here on
    assert confirmed is not None
    assert confirmed["type"] == "subscribe"
    accounts.revoke_tokens(engine, account.id)
    got = None
    while got is None or got["data"] != account.id.encode():
        assert time.monotonic() < deadline + 5, "nothing was published"
        got = heard.get_message(timeout=0.5)
    heard.close()
    other.close()
