"""The delivery job on a real huey consumer (embedded SQLite queue): retried after a
failure, then completed; or shown as failed with its reason, never left in progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from medcard import jobs
from medcard.auth import accounts
from medcard.config import Settings
from medcard.fhir.store.repository import Repository, Stored
from medcard.onboarding import consent, documents


@pytest.fixture
def consumer(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = (jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime)
    monkeypatch.setattr(documents, "RETRY_DELAY_SECONDS", 0)
    settings = Settings(data_dir=tmp_path, jobs_mode="embedded")
    jobs.configure(settings, engine)
    started = jobs.start_embedded_consumer(settings) is not None
    yield
    if started:
        jobs.stop_embedded_consumer()
    jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime = saved


def _flaky_gather(fail_times: int, seen: list[int]) -> Callable[..., list[Stored]]:
    real = documents.gather

    def gather(repo: Repository, patient_id: str, kind: Any) -> list[Stored]:
        seen.append(1)
        if len(seen) <= fail_times:
            raise RuntimeError("медицинская информационная система не отвечает")
        return real(repo, patient_id, kind)

    return gather


def _wait_for(engine: Engine, account: accounts.Account, status: str) -> documents.DocumentRequest:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = documents.requests_of(engine, account)
        if found and found[0].status == status:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"not {status}: {documents.requests_of(engine, account)}")


def _account(engine: Engine, card: str) -> accounts.Account:
    account = accounts.create_external_account(
        engine,
        "sso:77:job",
        accounts.Role.PATIENT,
        display_name="",
        fhir_ref=f"Patient/{card}",
        region="77",
    )
    consent.give(engine, account)
    return account


def test_failed_attempt_is_retried_and_then_delivered(
    engine: Engine, card: str, consumer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(documents, "gather", _flaky_gather(1, seen))
    account = _account(engine, card)
    documents.request_documents(engine, account, ["lab"], business_days=1)
    done = _wait_for(engine, account, "completed")
    assert len(seen) == 2
    assert [o.display for o in done.outputs] == ["Общий анализ крови — 2024-05-14"]
    assert done.reason == ""


def test_job_failing_every_retry_ends_failed_with_the_reason(
    engine: Engine, card: str, consumer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(documents, "gather", _flaky_gather(99, seen))
    account = _account(engine, card)
    documents.request_documents(engine, account, ["imaging"], business_days=1)
    failed = _wait_for(engine, account, "failed")
    assert len(seen) == 1 + documents.RETRIES
    assert "не отвечает" in failed.reason
    assert failed.business == "failed"
    assert failed.outputs == []
