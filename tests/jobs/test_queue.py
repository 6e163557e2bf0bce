"""The job queue: embedded SQLite storage with an in-process consumer, Redis in production,
retries, and a final failure recorded instead of a job stuck "in progress"."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from medcard import jobs
from medcard.config import Settings

DONE: dict[str, list[Any]] = {}
FAILED: dict[str, str] = {}
ATTEMPTS: dict[str, int] = {}
_lock = threading.Lock()


def _record_failure(kwargs: dict[str, Any], reason: str) -> None:
    FAILED[kwargs["key"]] = reason


@jobs.job(retries=0, on_failure=_record_failure)
def remember(*, key: str, value: int) -> None:
    DONE.setdefault(key, []).append(value)


@jobs.job(retries=2, retry_delay=0, on_failure=_record_failure)
def flaky(*, key: str, fail_times: int) -> None:
    with _lock:
        ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
        attempt = ATTEMPTS[key]
    if attempt <= fail_times:
        raise RuntimeError(f"attempt {attempt} failed: lab system unreachable")
    DONE.setdefault(key, []).append(attempt)


@pytest.fixture
def queue_with(engine: Engine, tmp_path: Path) -> Iterator[Any]:
    """configure(settings) for one test, then put the session's configuration back."""
    saved = (jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime)
    started: list[Settings] = []

    def make(**overrides: Any) -> Settings:
        s = Settings(data_dir=tmp_path, **overrides)
        jobs.configure(s, engine)
        if jobs.start_embedded_consumer(s) is not None:
            started.append(s)
        return s

    yield make
    for _ in started:
        jobs.stop_embedded_consumer()
    jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime = saved


def _wait(predicate: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the job did not finish in time")


def test_embedded_queue_runs_jobs_in_the_background(queue_with: Any) -> None:
    settings = queue_with(jobs_mode="embedded")
    key = uuid.uuid4().hex
    remember(key=key, value=7)
    _wait(lambda: key in DONE)
    assert DONE[key] == [7]
    assert (settings.data_dir / "jobs.sqlite3").exists()
    assert jobs.runtime().settings is settings


def test_failing_job_is_retried_then_succeeds(queue_with: Any) -> None:
    queue_with(jobs_mode="embedded")
    key = uuid.uuid4().hex
    flaky(key=key, fail_times=2)
    _wait(lambda: key in DONE)
    assert DONE[key] == [3]
    assert key not in FAILED


def test_job_failing_every_retry_ends_failed_with_its_reason(queue_with: Any) -> None:
    queue_with(jobs_mode="embedded")
    key = uuid.uuid4().hex
    flaky(key=key, fail_times=99)
    _wait(lambda: key in FAILED)
    assert ATTEMPTS[key] == 3  # the first run and two retries
    assert "lab system unreachable" in FAILED[key]


def test_immediate_mode_runs_inline_and_records_failure(queue_with: Any) -> None:
    queue_with(jobs_mode="immediate")
    key = uuid.uuid4().hex
    remember(key=key, value=1)
    assert DONE[key] == [1]
    flaky(key=key + "x", fail_times=99)
    assert "unreachable" in FAILED[key + "x"]


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _redis_up(), reason="no Redis at 127.0.0.1:6379")
def test_redis_queue_in_production_mode(queue_with: Any) -> None:
    queue_with(jobs_mode="embedded", redis_url="redis://127.0.0.1:6379/15")
    key = uuid.uuid4().hex
    remember(key=key, value=42)
    _wait(lambda: key in DONE)
    assert DONE[key] == [42]
    assert type(jobs.queue.storage).__name__ == "RedisStorage"
