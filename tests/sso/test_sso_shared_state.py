"""Issue 14 item 6: the single-use SSO state is shared by every worker.

Two application instances on one database stand for two workers behind one address:
a login started on one may come back to the other, and a replayed callback is refused
whichever worker it reaches.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, select

from medcard.auth.sso import ConsumedStates
from medcard.config import Settings
from medcard.db.engine import make_engine
from medcard.db.tables import sessions
from medcard.web.app import create_app
from tests.sso.conftest import MATCHED_SNILS, _wait_http, at_provider, create_patient, start_login


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def second_worker(sso_settings: Settings) -> Iterator[str]:
    """Another instance of the app with its own engine (its own process memory, as far
    as the app is concerned) on the same database."""
    engine = make_engine(sso_settings)
    app = create_app(sso_settings, engine)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/healthz")
    yield url
    server.should_exit = True
    thread.join(timeout=5)
    engine.dispose()


def _sessions(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(list(conn.execute(select(sessions))))


@pytest.mark.live
def test_callback_on_another_worker_signs_in_and_a_replay_on_the_first_is_refused(
    browser: httpx.Client, sso_server: str, second_worker: str, engine: Engine
) -> None:
    create_patient(engine, MATCHED_SNILS)
    started = start_login(browser, sso_server)
    callback = at_provider(browser, started.authorize_url, sso_server, "ivanova")
    # The load balancer sends the callback to the other worker.
    elsewhere = callback.replace(sso_server, second_worker, 1)
    assert browser.get(elsewhere).headers["location"] == "/access/consent"
    assert _sessions(engine) == 1

    # Replayed, state cookie and all, at the worker that started the login.
    browser.cookies.set("medcard_sso", started.login_cookie, domain="127.0.0.1", path="/auth/sso/")
    resp = browser.get(callback)
    assert resp.status_code == 303, resp.text
    page = browser.get(sso_server + resp.headers["location"])
    assert page.status_code == 400
    assert 'data-sso-result="replayed"' in page.text
    assert _sessions(engine) == 1


def test_two_stores_on_one_database_accept_a_state_once(engine: Engine, settings: Settings) -> None:
    other = make_engine(settings)
    try:
        workers = [ConsumedStates(engine, 600), ConsumedStates(other, 600)]
        state = uuid.uuid4().hex
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: workers[i % 2].consume(state), range(16)))
        assert answers.count(True) == 1
        assert not workers[0].consume(state)
        assert not workers[1].consume(state)
        assert workers[1].consume(uuid.uuid4().hex)
    finally:
        other.dispose()


def test_used_states_are_forgotten_once_their_cookies_have_expired(engine: Engine) -> None:
    from medcard.db.tables import sso_states

    short = ConsumedStates(engine, ttl_seconds=0)
    assert short.consume("first")
    assert short.consume("second")  # purges "first", whose time is up
    with engine.connect() as conn:
        assert len(list(conn.execute(select(sso_states)))) == 1


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _redis_up(), reason="no Redis at 127.0.0.1:6379")
def test_with_redis_configured_the_state_is_kept_there(engine: Engine) -> None:
    url = "redis://127.0.0.1:6379/15"
    workers: list[Any] = [ConsumedStates(engine, 60, url), ConsumedStates(engine, 60, url)]
    state = uuid.uuid4().hex
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: workers[i % 2].consume(state), range(16)))
    assert answers.count(True) == 1
    from medcard.db.tables import sso_states

    with engine.connect() as conn:
        assert list(conn.execute(select(sso_states))) == []  # nothing went to the database
