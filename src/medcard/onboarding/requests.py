"""Access requests: a person asks to be linked to their card, as a FHIR ``Task``.

The Task (R4 task.html) says who asks and for which card:

* ``code`` = ``access-request`` (our onboarding-task code system);
* ``for`` = the Patient found by SNILS, so the request sits in that card's
  compartment (the patient, and their doctors, can see that access was asked for);
* ``requester`` and ``groupIdentifier`` = the sign-in account (accounts are not FHIR
  resources, so by identifier); ``owner`` = the card's managing organisation, whose
  registrars decide;
* ``input`` = each entered field with the comparison result (extension), so the
  registrar sees what was typed and what differed;
* ``status`` ``requested`` → ``completed`` (approved: the account is linked with
  ``accounts.link``) or ``rejected`` (``statusReason`` says why); ``businessStatus``
  says who decided (automatically after a full match, or a registrar).

One open request per account: filing is a conditional create on the account's
open requests, so a double click or a second tab cannot open two.  A full match is
approved at once, unless the card is already linked to another account that signs
in with a password: then a registrar confirms (a full set of someone's documents is
exactly what an impostor would bring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from medcard import clock
from medcard.access.roles import Role
from medcard.auth import accounts
from medcard.auth.accounts import UNUSABLE_PASSWORD_HASH, Account, AccountError
from medcard.clock import format_instant
from medcard.db.tables import accounts as accounts_table
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository, Stored
from medcard.identifiers import SNILS_SYSTEM
from medcard.onboarding.store import (
    OPEN_STATUSES,
    TASK_CODE_SYSTEM,
    account_identifier,
    account_token,
    business_code,
    business_status,
    code_token,
    context_for,
    patient_id_of,
    repository,
    search,
)
from medcard.onboarding.verification import (
    FIELDS,
    FieldResult,
    Identity,
    Outcome,
    Verification,
    record_passports,
)
from medcard.regions.features import Feature
from medcard.regions.gate import patient_region

CODE = "access-request"
INPUT_SYSTEM = "https://medcard.example/fhir/CodeSystem/identity-field"
RESULT_EXTENSION = "https://medcard.example/fhir/StructureDefinition/identity-check-result"
MAX_REASON = 500


class RequestError(Exception):
    """A refused request operation; ``code`` is a message key of the pages."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class AccessRequest:
    """An access-request Task as the pages show it."""

    id: str
    version: int
    status: str
    business: str  # auto-approved, approved, rejected, review
    patient_id: str
    account_id: str
    requester: str  # the account's login
    authored: str
    reason: str
    entered: dict[str, str] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @classmethod
    def of(cls, stored: Stored) -> AccessRequest:
        task = stored.json()
        entered, results = {}, {}
        for item in task.get("input") or []:
            codings = (item.get("type") or {}).get("coding") or []
            name = next((c.get("code") for c in codings if c.get("system") == INPUT_SYSTEM), "")
            if not name:
                continue
            entered[name] = str(item.get("valueString") or "")
            for ext in item.get("extension") or []:
                if ext.get("url") == RESULT_EXTENSION:
                    results[name] = str(ext.get("valueCode") or "")
        requester = task.get("requester") or {}
        return cls(
            id=stored.id,
            version=stored.version_id,
            status=str(task.get("status")),
            business=business_code(task),
            patient_id=patient_id_of(str((task.get("for") or {}).get("reference") or "")),
            account_id=str((requester.get("identifier") or {}).get("value") or ""),
            requester=str(requester.get("display") or ""),
            authored=str(task.get("authoredOn") or ""),
            reason=str((task.get("statusReason") or {}).get("text") or ""),
            entered=entered,
            results=results,
        )


def _inputs(identity: Identity, verification: Verification) -> list[dict[str, Any]]:
    out = []
    for name, value in identity.as_dict().items():
        if not value.strip():
            continue
        item: dict[str, Any] = {
            "type": {"coding": [{"system": INPUT_SYSTEM, "code": name}]},
            "valueString": value.strip(),
        }
        result = verification.fields.get(name)
        if result is not None:
            item["extension"] = [{"url": RESULT_EXTENSION, "valueCode": result.value}]
        out.append(item)
    return out


def requests_of(engine: Engine, account: Account) -> list[AccessRequest]:
    """The account's access requests, newest first."""
    with repository(engine, context_for(account)) as repo:
        found = search(
            repo,
            "Task",
            ("group-identifier", account_token(account.id)),
            ("code", code_token(CODE)),
            ("_sort", "-authored-on"),
            count=50,
        )
    return [AccessRequest.of(s) for s in found]


def open_request(engine: Engine, account: Account) -> AccessRequest | None:
    return next((r for r in requests_of(engine, account) if r.open), None)


def _other_password_accounts(engine: Engine, account: Account, patient_ref: str) -> bool:
    """Whether another active account signing in with a password acts as this card."""
    with engine.connect() as conn:
        row = conn.execute(
            select(accounts_table.c.id).where(
                accounts_table.c.fhir_ref == patient_ref,
                accounts_table.c.id != account.id,
                accounts_table.c.active.is_(True),
                accounts_table.c.password_hash != UNUSABLE_PASSWORD_HASH,
            )
        ).first()
    return row is not None


def file_request(
    engine: Engine, account: Account, identity: Identity, verification: Verification
) -> AccessRequest:
    """File the request after a check; approve it at once when everything matched."""
    if account.role is not Role.PATIENT:
        raise RequestError("ob_req_not_patient")
    if account.fhir_ref:
        raise RequestError("ob_req_already_linked")
    if not verification.may_file or not verification.patient_id:
        raise RequestError("ob_req_not_verified")
    if not patient_region(engine, verification.patient_id).enabled(Feature.REGISTRATION):
        # The region offers only the national sign-on route to the card.
        raise RequestError("ob_req_registration_off")
    patient_ref = f"Patient/{verification.patient_id}"
    automatic = verification.outcome is Outcome.MATCHED and not _other_password_accounts(
        engine, account, patient_ref
    )
    now = format_instant(clock.now_micros())
    with repository(engine, context_for(account)) as repo:
        patient = repo.read("Patient", verification.patient_id).json()
        owner = (patient.get("managingOrganization") or {}).get("reference")
        task: dict[str, Any] = {
            "resourceType": "Task",
            "groupIdentifier": account_identifier(account.id),
            "status": "requested",
            "businessStatus": business_status("review", "На проверке у регистратора"),
            "intent": "order",
            "priority": "routine",
            "code": {
                "coding": [{"system": TASK_CODE_SYSTEM, "code": CODE}],
                "text": "Запрос доступа к медицинской карте",
            },
            "for": {"reference": patient_ref},
            "authoredOn": now,
            "lastModified": now,
            "requester": {"identifier": account_identifier(account.id), "display": account.login},
            "input": _inputs(identity, verification),
        }
        if owner:
            task["owner"] = {"reference": owner}
        # One open request per account: the conditional create finds an open one instead.
        criteria = (
            f"group-identifier={account_token(account.id)}&code={code_token(CODE)}"
            f"&status={','.join(OPEN_STATUSES)}"
        )
        with repo.unit_of_work():
            made = repo.create(task, if_none_exist=criteria)
        if made.status == 200:
            raise RequestError("ob_req_already_open")
        stored = made.stored
        if automatic:
            stored = _decide(
                repo, stored, "completed", "auto-approved", "Одобрен автоматически: данные совпали"
            )
    if automatic:
        _link(engine, account, patient_ref)
    return AccessRequest.of(stored)


def _decide(repo: Repository, stored: Stored, status: str, code: str, text: str) -> Stored:
    task = stored.json()
    task["status"] = status
    task["businessStatus"] = business_status(code, text)
    task["lastModified"] = format_instant(clock.now_micros())
    if status == "rejected":
        task["statusReason"] = {"text": text}
    with repo.unit_of_work():
        return repo.update("Task", stored.id, task, if_match=stored.etag).stored


def _link(engine: Engine, account: Account, patient_ref: str) -> None:
    try:
        accounts.link(engine, account.id, patient_ref)
    except AccountError as exc:  # pragma: no cover - checked before the decision
        raise RequestError("ob_req_link_failed") from exc
    accounts.audit(engine, account, [("access-granted", "0", f"linked to {patient_ref}")])


# -- registrars ----------------------------------------------------------------------------


def _registrar(account: Account) -> str:
    if account.role is not Role.REGISTRAR:
        raise RequestError("ob_req_not_registrar")
    return account.organization_ref


def queue(engine: Engine, registrar: Account) -> list[AccessRequest]:
    """Open requests for cards of the registrar's organisation (and cards without one)."""
    org = _registrar(registrar)
    found: list[Stored] = []
    with repository(engine, context_for(registrar)) as repo:
        base = (("code", code_token(CODE)), ("status", "requested"), ("_sort", "authored-on"))
        if org:
            found += search(repo, "Task", *base, ("owner", org))
        found += search(repo, "Task", *base, ("owner:missing", "true"))
    return [AccessRequest.of(s) for s in found]


def patient_summary(engine: Engine, registrar: Account, patient_id: str) -> dict[str, str]:
    """The record's side of the comparison, for the registrar (demographics only)."""
    _registrar(registrar)
    with repository(engine, context_for(registrar)) as repo:
        try:
            patient = repo.read("Patient", patient_id).json()
        except FhirError:
            return {}
    names = (patient.get("name") or [{}])[0]
    given = names.get("given") or []
    passports = sorted(record_passports(patient))
    snils = next(
        (
            str(i.get("value"))
            for i in patient.get("identifier") or []
            if i.get("system") == SNILS_SYSTEM
        ),
        "",
    )
    return {
        "snils": snils,
        "family": str(names.get("family") or ""),
        "given": str(given[0]) if given else "",
        "middle": " ".join(str(g) for g in given[1:]),
        "birth_date": str(patient.get("birthDate") or ""),
        "passport": passports[0] if passports else "",
    }


def _load_open(repo: Repository, registrar: Account, task_id: str) -> Stored:
    try:
        stored = repo.read("Task", task_id)
    except FhirError as exc:
        raise RequestError("ob_req_not_found") from exc
    task = stored.json()
    codes = [c.get("code") for c in (task.get("code") or {}).get("coding") or []]
    owner = (task.get("owner") or {}).get("reference") or ""
    if CODE not in codes or (owner and owner != registrar.organization_ref):
        raise RequestError("ob_req_not_found")
    if task.get("status") != "requested":
        raise RequestError("ob_req_decided")
    return stored


def approve(engine: Engine, registrar: Account, task_id: str) -> AccessRequest:
    """Approve: the Task completes and the requesting account is linked to the card."""
    _registrar(registrar)
    with repository(engine, context_for(registrar)) as repo:
        stored = _load_open(repo, registrar, task_id)
        request = AccessRequest.of(stored)
        applicant = accounts.get(engine, request.account_id)
        target = f"Patient/{request.patient_id}"
        if applicant is None or not applicant.active or applicant.role is not Role.PATIENT:
            raise RequestError("ob_req_applicant_gone")
        if applicant.fhir_ref and applicant.fhir_ref != target:
            raise RequestError("ob_req_already_linked")
        try:
            stored = _decide(repo, stored, "completed", "approved", "Одобрен регистратором")
        except FhirError as exc:
            raise RequestError("ob_req_decided") from exc
    _link(engine, applicant, target)
    accounts.audit(engine, registrar, [("access-approve", "0", f"Task/{task_id} → {target}")])
    return AccessRequest.of(stored)


def reject(engine: Engine, registrar: Account, task_id: str, reason: str) -> AccessRequest:
    """Reject with a reason the applicant reads; nothing is linked."""
    _registrar(registrar)
    reason = " ".join(reason.split())[:MAX_REASON]
    if not reason:
        raise RequestError("ob_req_reason_required")
    with repository(engine, context_for(registrar)) as repo:
        stored = _load_open(repo, registrar, task_id)
        try:
            stored = _decide(repo, stored, "rejected", "rejected", reason)
        except FhirError as exc:
            raise RequestError("ob_req_decided") from exc
    accounts.audit(engine, registrar, [("access-reject", "0", f"Task/{task_id}: {reason}")])
    return AccessRequest.of(stored)


def explained_fields(request: AccessRequest) -> list[tuple[str, str, str]]:
    """(field, entered, result) in form order, for the pages."""
    return [
        (name, request.entered.get(name, ""), request.results.get(name, FieldResult.MATCH.value))
        for name in FIELDS
        if name in request.entered or name in request.results
    ]
