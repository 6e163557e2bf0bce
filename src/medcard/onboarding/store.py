"""How onboarding reaches the record: through the repository, acting for an account.

A person getting access has no card yet (registration) or no consent yet (SSO), so
their own patient context cannot read what the checks need.  Onboarding therefore
uses a system-scoped context whose *actor is the account* (``Account/<id>``): the
store's gate and audit apply as for every caller, and the audit log says which
account looked at which card, so a check against someone's SNILS shows in that
person's access log.  Registrars act the same way for the Tasks their role cannot
read through its own scopes (the access-request queue), with their organisation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.auth.accounts import Account
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository, Stored
from medcard.terminology.reference import MEDCARD_FHIR_BASE

PURPOSE = "onboarding"
JOB_ACTOR = "system:jobs:onboarding"

# Our code systems for the workflow resources (Task.code, Task.businessStatus, ...).
TASK_CODE_SYSTEM = f"{MEDCARD_FHIR_BASE}/CodeSystem/onboarding-task"
BUSINESS_STATUS_SYSTEM = f"{MEDCARD_FHIR_BASE}/CodeSystem/onboarding-business-status"
ACCOUNT_SYSTEM = f"{MEDCARD_FHIR_BASE}/sid/account"  # the sign-in account (not a FHIR resource)

# Task.status values that mean "still being worked on" (R4 task-status).
OPEN_STATUSES = ("draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold")


def context_for(account: Account, purpose: str = PURPOSE) -> AccessContext:
    orgs: frozenset[str] = frozenset()
    if account.organization_ref.startswith("Organization/"):
        orgs = frozenset({account.organization_ref.split("/", 1)[1]})
    return AccessContext(
        actor=account.actor,
        scopes=Scopes.parse("system/*.cruds"),
        role=Role.SYSTEM,  # a service on the person's behalf, not the person's rules
        client_id="web",
        purpose=purpose,
        organizations=orgs,
        account_id=account.id,
    )


def job_context() -> AccessContext:
    return AccessContext.system(JOB_ACTOR, purpose=PURPOSE)


@contextmanager
def repository(engine: Engine, ctx: AccessContext) -> Iterator[Repository]:
    """A repository whose audit entries are written when the block ends."""
    repo = Repository(engine, ctx)
    try:
        yield repo
    finally:
        repo.close()


def search(
    repo: Repository, rtype: str, *params: tuple[str, str], count: int = 100
) -> list[Stored]:
    req = parse(rtype, [*params, ("_count", str(count))], max_count=1000)
    return repo.search(req).matches


def account_identifier(account_id: str) -> dict[str, str]:
    return {"system": ACCOUNT_SYSTEM, "value": account_id}


def account_token(account_id: str) -> str:
    return f"{ACCOUNT_SYSTEM}|{account_id}"


def code_token(code: str) -> str:
    return f"{TASK_CODE_SYSTEM}|{code}"


def business_status(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": code}], "text": text}


def business_code(task: dict[str, Any]) -> str:
    for coding in (task.get("businessStatus") or {}).get("coding") or []:
        if coding.get("system") == BUSINESS_STATUS_SYSTEM:
            return str(coding.get("code") or "")
    return ""


def patient_id_of(ref: str) -> str:
    return ref.split("/", 1)[1] if ref.startswith("Patient/") else ""
