"""Issue 14 item 5: sign-in, registration, /verify and the token endpoint are
rate-limited in the shared store, so several workers enforce one limit; a flood of
refused API requests is folded into counts in the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard.auth import ratelimit
from medcard.auth.accounts import Account
from medcard.auth.ratelimit import AUDIT_ONE_BY_ONE, Limiter, Rule, fold_refusal
from medcard.config import Settings
from medcard.db.tables import audit_log
from medcard.web.app import create_app
from tests.auth.conftest import csrf_of, login

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def limited(settings: Settings, engine: Engine) -> Iterator[Callable[[], TestClient]]:
    """Browser-like clients of app instances with rate limits on (each call: another
    instance on the same database, as another worker would be)."""
    made: list[TestClient] = []

    def make() -> TestClient:
        app = create_app(settings.model_copy(update={"rate_limits": True}), engine)
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def _rows(engine: Engine, interaction: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_log)
                .where(audit_log.c.interaction == interaction)
                .order_by(audit_log.c.id)
            )
        )


def test_login_is_limited_per_account_across_workers(
    limited: Callable[[], TestClient],
    make_account: Callable[..., Account],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "LOGIN_ACCOUNT", Rule("login-account", 4))
    account = make_account()
    first, second = limited(), limited()
    for c in (first, second, first, second):  # four attempts over two workers
        assert login(c, account.login, "wrong password").status_code == 401
    refused = login(second, account.login, "wrong password")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) <= 60
    assert "Слишком много попыток" in refused.text
    # even the right password waits: the limit is checked before the password is
    assert login(first, account.login).status_code == 429
    # another account from the same address is not held up by this one
    other = make_account()
    assert login(first, other.login).status_code == 303
    notes = [r.detail for r in _rows(engine, "rate-limit")]
    assert len(notes) == 1  # the first refusal over the limit is audited, not every one
    assert "login-account exceeded" in notes[0]
    assert account.login not in notes[0]  # a fingerprint, never the typed text


def test_login_registration_and_verify_are_limited_per_address(
    limited: Callable[[], TestClient],
    make_account: Callable[..., Account],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "LOGIN_IP", Rule("login-ip", 3))
    monkeypatch.setattr(ratelimit, "REGISTER_IP", Rule("register-ip", 2))
    monkeypatch.setattr(ratelimit, "VERIFY_IP", Rule("verify-ip", 2))
    c = limited()
    for n in range(3):
        assert login(c, make_account().login, "wrong").status_code == 401, n
    assert login(c, make_account().login).status_code == 429

    def register() -> Any:
        page = c.get("/register")
        login_ = f"new-{uuid.uuid4().hex[:8]}@example.org"
        data = {
            "login": login_,
            "password": "x",
            "password2": "y",
            "csrf_token": csrf_of(page.text),
        }
        return c.post("/register", data=data)

    assert register().status_code != 429
    assert register().status_code != 429
    assert register().status_code == 429
    assert c.get("/verify/ABCD-EFGH").status_code != 429
    assert c.get("/verify/ABCD-EFGI").status_code != 429
    assert c.get("/verify/ABCD-EFGJ").status_code == 429


def test_token_endpoint_is_limited_with_an_oauth_error(
    limited: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "TOKEN_IP", Rule("token-ip", 2))
    c = limited()
    for _ in range(2):
        assert c.post("/oauth/token", data={"grant_type": "client_credentials"}).status_code != 429
    r = c.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert r.status_code == 429
    assert r.json()["error"] == "invalid_request"
    assert "Retry-After" in r.headers


def test_a_flood_of_bad_tokens_is_folded_into_counts(
    limited: Callable[[], TestClient], engine: Engine
) -> None:
    c = limited()
    before = len(_rows(engine, "login"))
    for _ in range(AUDIT_ONE_BY_ONE + 15):
        r = c.get("/fhir/Patient", headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
        assert r.json()["resourceType"] == "OperationOutcome"
    rows = _rows(engine, "login")[before:]
    # the window may turn over mid-test: then the next minute starts its own ten
    assert AUDIT_ONE_BY_ONE + 1 <= len(rows) <= 2 * AUDIT_ONE_BY_ONE + 3
    assert any("further ones are counted" in r.detail for r in rows)


def test_the_total_of_a_flooded_minute_is_written_next_minute(engine: Engine) -> None:
    limiter = Limiter(engine)
    source = f"198.51.100.{uuid.uuid4().int % 250}"
    minute = 1_800_000_000 // 60 * 60
    results = [fold_refusal(limiter, source, now=minute + i * 0.1) for i in range(137)]
    assert [f.write_this for f in results].count(True) == AUDIT_ONE_BY_ONE
    assert "further ones are counted" in results[AUDIT_ONE_BY_ONE].note
    assert "100 refused requests" in results[99].note
    nxt = fold_refusal(limiter, source, now=minute + 61)
    assert nxt.write_this
    assert f"137 refused requests from {source} in minute 2027-01-15T08:00Z" == nxt.note


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    return REDIS_URL


def test_redis_counts_are_shared_between_workers(engine: Engine, redis_url: str) -> None:
    rule = Rule(f"test-{uuid.uuid4().hex[:8]}", 3)
    a, b = Limiter(engine, redis_url), Limiter(engine, redis_url)
    hits = [lim.hit(rule, "203.0.113.9", now=1_800_000_000) for lim in (a, b, a, b)]
    assert [h.allowed for h in hits] == [True, True, True, False]
    assert hits[-1].count == 4
    # a new window starts from zero
    assert a.hit(rule, "203.0.113.9", now=1_800_000_060).allowed


def test_database_counts_are_shared_between_workers(engine: Engine) -> None:
    rule = Rule(f"test-{uuid.uuid4().hex[:8]}", 2)
    a, b = Limiter(engine), Limiter(engine)
    assert [lim.hit(rule, "x", now=1_800_000_000).allowed for lim in (a, b, a)] == [
        True,
        True,
        False,
    ]
