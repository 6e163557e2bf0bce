"""Change and cancel access on the EMIAS route (registration → check → request).

A person whose account was linked to their card by an access request (approved
automatically on a full match, or by a registrar) may cancel that access from the
portal («Отключить доступ к медицинской карте»).  Cancelling, in this order:

* records a FHIR ``Task`` ``access-cancel`` (status ``completed``, ``for`` the card,
  ``requester`` the account, ``basedOn`` the access request it ends), so the card's
  compartment says when and by which account access was given up;
* unlinks the account (``accounts.unlink``): every session of the account finds the
  card closed at its next request, and every access and refresh token stops at once
  (the account's token epoch is bumped and its stored tokens revoked);
* writes an ``access-cancel`` audit entry.

The card stays closed until the person asks again (``/access``: a new check and
request).  Accounts that reached the card another way (the national sign-in, or an
account made by the operator) have nothing to cancel here: the refusal says what to do.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from medcard import clock
from medcard.access.roles import Role
from medcard.audit.recorder import SUCCESS
from medcard.auth import accounts
from medcard.auth.accounts import Account
from medcard.clock import format_instant
from medcard.onboarding import is_sso
from medcard.onboarding.requests import CODE, AccessRequest, RequestError, requests_of
from medcard.onboarding.store import (
    TASK_CODE_SYSTEM,
    account_identifier,
    business_status,
    context_for,
    patient_id_of,
    repository,
)

CANCEL_CODE = "access-cancel"


def granting_request(engine: Engine, account: Account) -> AccessRequest | None:
    """The approved access request that linked the account to its current card."""
    pid = patient_id_of(account.fhir_ref)
    if not pid or account.role is not Role.PATIENT or is_sso(account):
        return None
    return next(
        (
            r
            for r in requests_of(engine, account)
            if r.status == "completed" and r.patient_id == pid
        ),
        None,
    )


def cancel_access(engine: Engine, account: Account) -> Account:
    """Close the card to this account now; RequestError says why it cannot."""
    if account.role is not Role.PATIENT:
        raise RequestError("ob_req_not_patient")
    if not account.fhir_ref:
        raise RequestError("ob_cancel_not_linked")
    if is_sso(account):
        raise RequestError("ob_cancel_sso")
    granted = granting_request(engine, account)
    if granted is None:
        raise RequestError("ob_cancel_not_requested")
    now = format_instant(clock.now_micros())
    task: dict[str, Any] = {
        "resourceType": "Task",
        "groupIdentifier": account_identifier(account.id),
        "basedOn": [{"reference": f"Task/{granted.id}"}],
        "status": "completed",
        "businessStatus": business_status("cancelled-by-patient", "Доступ отключён пациентом"),
        "intent": "order",
        "code": {
            "coding": [{"system": TASK_CODE_SYSTEM, "code": CANCEL_CODE}],
            "text": "Отключение доступа к медицинской карте",
        },
        "for": {"reference": account.fhir_ref},
        "authoredOn": now,
        "lastModified": now,
        "requester": {"identifier": account_identifier(account.id), "display": account.login},
    }
    with repository(engine, context_for(account)) as repo, repo.unit_of_work():
        repo.create(task)
    closed = accounts.unlink(engine, account.id)
    accounts.audit(
        engine,
        account,
        [(CANCEL_CODE, SUCCESS, f"{account.fhir_ref} closed to the account (Task/{granted.id})")],
    )
    return closed


__all__ = ["CODE", "cancel_access", "granting_request"]
