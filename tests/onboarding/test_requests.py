"""Access requests: auto-approval on a full match, one open request, the registrar's decision."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.auth.accounts import Account, Role
from medcard.fhir.store.repository import Repository
from medcard.onboarding import card_gate, requests
from medcard.onboarding.requests import RequestError
from medcard.onboarding.verification import Identity, verify
from tests.onboarding.conftest import ORG, TYPED, fresh


def _check(engine: Engine, account: Account, **changes: str) -> tuple[Identity, object]:
    identity = Identity.from_dict({**TYPED, **changes})
    return identity, verify(engine, account, identity, limit=5)


def _file(engine: Engine, account: Account, **changes: str) -> requests.AccessRequest:
    identity, result = _check(engine, account, **changes)
    return requests.file_request(engine, account, identity, result)  # type: ignore[arg-type]


def test_full_match_is_approved_at_once_and_opens_the_card(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    assert card_gate(engine, account) == "/access"
    filed = _file(engine, account)
    assert (filed.status, filed.business) == ("completed", "auto-approved")
    linked = fresh(engine, account)
    assert linked.fhir_ref == f"Patient/{card}"
    assert card_gate(engine, linked) is None
    task = Repository(engine, AccessContext.system()).read("Task", filed.id).json()
    assert task["for"] == {"reference": f"Patient/{card}"}
    assert task["owner"] == {"reference": f"Organization/{ORG}"}
    assert task["requester"]["identifier"]["value"] == account.id
    assert {i["type"]["coding"][0]["code"] for i in task["input"]} >= {"snils", "passport"}


def test_partial_match_waits_for_the_registrar_and_a_second_request_is_refused(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    filed = _file(engine, account, family="Иванова")
    assert (filed.status, filed.business) == ("requested", "review")
    assert filed.results["family"] == "mismatch"
    assert fresh(engine, account).fhir_ref == ""
    with pytest.raises(RequestError) as refused:
        _file(engine, account)
    assert refused.value.code == "ob_req_already_open"
    assert [r.status for r in requests.requests_of(engine, account)] == ["requested"]
    assert fresh(engine, account).fhir_ref == ""  # the second, matching check changed nothing


def test_mismatch_cannot_be_filed(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    with pytest.raises(RequestError) as refused:
        _file(engine, account, family="Иванова", given="Ольга")
    assert refused.value.code == "ob_req_not_verified"
    assert requests.requests_of(engine, account) == []


def test_card_with_a_password_account_needs_a_registrar_even_on_full_match(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    make_account(fhir_ref=f"Patient/{card}")
    filed = _file(engine, make_account())
    assert filed.status == "requested"


def test_registrar_of_the_organisation_approves(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    filed = _file(engine, account, passport="4509000001")
    registrar = make_account(Role.REGISTRAR, organization_ref=f"Organization/{ORG}")
    elsewhere = make_account(Role.REGISTRAR, organization_ref="Organization/other")
    assert [r.id for r in requests.queue(engine, registrar)] == [filed.id]
    assert requests.queue(engine, elsewhere) == []
    with pytest.raises(RequestError):
        requests.approve(engine, elsewhere, filed.id)
    summary = requests.patient_summary(engine, registrar, card)
    assert summary["family"] == "Семенова"
    assert summary["passport"] == "4509123456"
    done = requests.approve(engine, registrar, filed.id)
    assert (done.status, done.business) == ("completed", "approved")
    assert fresh(engine, account).fhir_ref == f"Patient/{card}"
    assert requests.queue(engine, registrar) == []
    with pytest.raises(RequestError) as twice:
        requests.approve(engine, registrar, filed.id)
    assert twice.value.code == "ob_req_decided"


def test_registrar_rejects_with_a_reason_and_the_person_may_try_again(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    filed = _file(engine, account, middle="Ивановна")
    registrar = make_account(Role.REGISTRAR, organization_ref=f"Organization/{ORG}")
    with pytest.raises(RequestError) as no_reason:
        requests.reject(engine, registrar, filed.id, "   ")
    assert no_reason.value.code == "ob_req_reason_required"
    done = requests.reject(engine, registrar, filed.id, "Отчество не совпадает с паспортом")
    assert (done.status, done.reason) == ("rejected", "Отчество не совпадает с паспортом")
    assert fresh(engine, account).fhir_ref == ""
    again = _file(engine, account)
    assert again.status == "completed"


def test_only_registrars_see_the_queue(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    doctor = make_account(Role.PRACTITIONER, organization_ref=f"Organization/{ORG}")
    with pytest.raises(RequestError) as refused:
        requests.queue(engine, doctor)
    assert refused.value.code == "ob_req_not_registrar"
