"""Issue 14 item 7: twenty identical document requests at the same moment make one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.onboarding import consent, documents

SUBMISSIONS = 20


def test_twenty_identical_document_requests_at_once_make_one(
    engine: Engine, card: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = accounts.create_external_account(
        engine,
        "sso:77:race",
        accounts.Role.PATIENT,
        display_name="Семенова Алена",
        fhir_ref=f"Patient/{card}",
        region="77",
    )
    consent.give(engine, account)
    monkeypatch.setattr(documents, "deliver_documents", lambda **_: None)  # stays open
    start = threading.Barrier(SUBMISSIONS)

    def submit(_: int) -> tuple[list[str], list[str]]:
        start.wait()
        return documents.request_documents(engine, account, ["lab"], business_days=1)

    with ThreadPoolExecutor(SUBMISSIONS) as pool:
        results = list(pool.map(submit, range(SUBMISSIONS)))
    created = [task_id for made, _ in results for task_id in made]
    assert len(created) == 1
    assert sum(skipped == ["lab"] for _, skipped in results) == SUBMISSIONS - 1
    assert [r.kind for r in documents.requests_of(engine, account)] == ["lab"]
