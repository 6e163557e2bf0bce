"""SSO route: consent (revocable), document requests delivered by the job with a deadline."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from medcard import clock
from medcard.auth.accounts import Account
from medcard.onboarding import card_gate, consent, documents
from medcard.onboarding.consent import ConsentError
from medcard.onboarding.documents import DocumentsError, due_after


def _sso_account(engine: Engine, card: str) -> Account:
    from medcard.auth import accounts

    return accounts.create_external_account(
        engine,
        "sso:77:ivanova",
        accounts.Role.PATIENT,
        display_name="Семенова Алена",
        fhir_ref=f"Patient/{card}",
        region="77",
    )


def test_due_date_skips_weekends() -> None:
    friday = dt.datetime(2025, 3, 14, 15, 0, tzinfo=dt.UTC)
    assert due_after(friday, 1) == dt.datetime(2025, 3, 17, 15, 0, tzinfo=dt.UTC)
    assert due_after(friday - dt.timedelta(days=1), 1) == friday
    saturday = dt.datetime(2025, 3, 15, 10, 0, tzinfo=dt.UTC)
    assert due_after(saturday, 1) == dt.datetime(2025, 3, 18, 0, 0, tzinfo=dt.UTC)
    assert due_after(friday, 3) == dt.datetime(2025, 3, 19, 15, 0, tzinfo=dt.UTC)


def test_sso_account_needs_consent_before_the_card(engine: Engine, card: str) -> None:
    account = _sso_account(engine, card)
    assert card_gate(engine, account) == "/access/consent"
    first = consent.give(engine, account)
    assert consent.give(engine, account).id == first.id  # agreeing twice makes one
    resource = first.json()
    assert resource["status"] == "active"
    assert resource["patient"] == {"reference": f"Patient/{card}"}
    assert card_gate(engine, account) is None


def test_documents_need_consent(engine: Engine, card: str, inline_jobs: None) -> None:
    account = _sso_account(engine, card)
    with pytest.raises(DocumentsError) as refused:
        documents.request_documents(engine, account, ["lab"], business_days=1)
    assert refused.value.code == "ob_docs_consent_required"
    assert documents.requests_of(engine, account) == []


def test_requested_documents_arrive_with_references(
    engine: Engine, card: str, inline_jobs: None
) -> None:
    account = _sso_account(engine, card)
    consent.give(engine, account)
    created, skipped = documents.request_documents(
        engine, account, ["lab", "certificates", "protocols", "bogus"], business_days=2
    )
    assert len(created) == 3
    assert skipped == []
    listed = {r.kind: r for r in documents.requests_of(engine, account)}
    assert {k: r.status for k, r in listed.items()} == {
        "lab": "completed",
        "certificates": "completed",
        "protocols": "completed",
    }
    lab = listed["lab"]
    assert [(o.resource_type, o.display) for o in lab.outputs] == [
        ("DiagnosticReport", "Общий анализ крови — 2024-05-14")
    ]
    assert [o.resource_type for o in listed["certificates"].outputs] == ["DocumentReference"]
    assert listed["protocols"].outputs == []
    assert lab.due is not None
    assert lab.authored is not None
    assert lab.due - lab.authored >= dt.timedelta(days=2)
    assert not lab.overdue
    assert not lab.late


def test_revoking_consent_cancels_open_requests_keeps_delivered_and_refuses_new(
    engine: Engine, card: str, monkeypatch: pytest.MonkeyPatch, inline_jobs: None
) -> None:
    account = _sso_account(engine, card)
    consent.give(engine, account)
    documents.request_documents(engine, account, ["imaging"], business_days=1)
    # Nobody consumes the next one: it stays open until the consent is revoked.
    monkeypatch.setattr(documents, "deliver_documents", lambda **_: None)
    documents.request_documents(engine, account, ["lab"], business_days=1)
    before = {r.kind: r.status for r in documents.requests_of(engine, account)}
    assert before == {"imaging": "completed", "lab": "requested"}
    revoked = consent.revoke(engine, account)
    assert revoked.json()["status"] == "inactive"
    assert "end" in revoked.json()["provision"]["period"]
    after = {r.kind: r for r in documents.requests_of(engine, account)}
    assert after["lab"].status == "cancelled"
    assert "отозвано" in after["lab"].reason
    assert after["imaging"].status == "completed"
    assert after["imaging"].outputs
    with pytest.raises(DocumentsError):
        documents.request_documents(engine, account, ["lab"], business_days=1)
    with pytest.raises(ConsentError):
        consent.revoke(engine, account)
    assert card_gate(engine, account) == "/access/consent"
    # The job arriving late for a cancelled request delivers nothing.
    assert documents.deliver(engine, after["lab"].id) == "cancelled"


def test_job_after_revocation_cancels_instead_of_delivering(
    engine: Engine, card: str, monkeypatch: pytest.MonkeyPatch, inline_jobs: None
) -> None:
    account = _sso_account(engine, card)
    consent.give(engine, account)
    monkeypatch.setattr(documents, "deliver_documents", lambda **_: None)
    (task_id,), _ = documents.request_documents(engine, account, ["lab"], business_days=1)
    # The consent disappears under the queued job (revoked from another session).
    from medcard.access.context import AccessContext
    from medcard.fhir.store.repository import Repository

    repo = Repository(engine, AccessContext.system())
    current = consent.active_in(repo, card)
    assert current is not None
    with repo.unit_of_work():
        repo.update("Consent", current.id, {**current.json(), "status": "inactive"})
    assert documents.deliver(engine, task_id) == "cancelled"
    assert documents.requests_of(engine, account)[0].outputs == []


def test_second_request_of_an_open_kind_is_skipped(
    engine: Engine, card: str, monkeypatch: pytest.MonkeyPatch, inline_jobs: None
) -> None:
    account = _sso_account(engine, card)
    consent.give(engine, account)
    monkeypatch.setattr(documents, "deliver_documents", lambda **_: None)
    documents.request_documents(engine, account, ["lab"], business_days=1)
    created, skipped = documents.request_documents(
        engine, account, ["lab", "imaging"], business_days=1
    )
    assert len(created) == 1
    assert skipped == ["lab"]


def test_overdue_when_the_deadline_passes_undelivered(
    engine: Engine, card: str, monkeypatch: pytest.MonkeyPatch, inline_jobs: None
) -> None:
    account = _sso_account(engine, card)
    consent.give(engine, account)
    monkeypatch.setattr(documents, "deliver_documents", lambda **_: None)
    documents.request_documents(engine, account, ["lab"], business_days=1)
    (pending,) = documents.requests_of(engine, account)
    assert not pending.overdue
    later = clock.now() + dt.timedelta(days=4)
    monkeypatch.setattr(clock, "now", lambda: later)
    (pending,) = documents.requests_of(engine, account)
    assert pending.overdue
