"""Consent to the processing of personal data, as a FHIR ``Consent`` (R4 consent.html).

A person who signs in through the national identity provider has a card but has not
yet agreed to medcard processing their data; documents flow to them only with an
active Consent.  The resource:

* ``status`` ``active``, and ``inactive`` once revoked (R4 consent-state-codes;
  nothing is deleted: the history shows when consent was given and withdrawn);
* ``scope`` ``patient-privacy``; ``category`` our ``pd-processing`` plus LOINC
  59284-0 "Patient Consent"; ``policy.uri`` the text's version, so a later text
  needs a new consent;
* ``patient`` and ``performer`` the Patient; ``provision`` ``permit`` for the
  period from agreement to revocation.

Revoking cancels open document requests (``documents.cancel_open``) in the same
transaction; documents already delivered stay listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from medcard import clock
from medcard.auth.accounts import Account
from medcard.clock import format_instant
from medcard.fhir.store.repository import Repository, Stored
from medcard.onboarding.store import context_for, patient_id_of, repository, search
from medcard.terminology.reference import MEDCARD_FHIR_BASE

CATEGORY_SYSTEM = f"{MEDCARD_FHIR_BASE}/CodeSystem/consent-category"
CATEGORY = "pd-processing"
POLICY_URI = f"{MEDCARD_FHIR_BASE}/policy/personal-data-processing/v1"


class ConsentError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class ConsentState:
    active: Stored | None
    history: list[Stored]

    @property
    def given(self) -> bool:
        return self.active is not None


def _patient_id(account: Account) -> str:
    pid = patient_id_of(account.fhir_ref)
    if not pid:
        raise ConsentError("ob_consent_no_card")
    return pid


def consents(repo: Repository, patient_id: str) -> list[Stored]:
    """This kind of consent of the patient, newest first."""
    return search(
        repo,
        "Consent",
        ("patient", f"Patient/{patient_id}"),
        ("category", f"{CATEGORY_SYSTEM}|{CATEGORY}"),
        ("_sort", "-_lastUpdated"),
        count=50,
    )


def active_in(repo: Repository, patient_id: str) -> Stored | None:
    return next((c for c in consents(repo, patient_id) if c.json().get("status") == "active"), None)


def state(engine: Engine, account: Account) -> ConsentState:
    pid = patient_id_of(account.fhir_ref)
    if not pid:
        return ConsentState(None, [])
    with repository(engine, context_for(account)) as repo:
        found = consents(repo, pid)
    active = next((c for c in found if c.json().get("status") == "active"), None)
    return ConsentState(active, found)


def has_active(engine: Engine, account: Account) -> bool:
    return state(engine, account).given


def _resource(patient_id: str, now: str) -> dict[str, Any]:
    ref = {"reference": f"Patient/{patient_id}"}
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                    "display": "Privacy Consent",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": CATEGORY_SYSTEM,
                        "code": CATEGORY,
                        "display": "Согласие на обработку персональных данных",
                    }
                ]
            },
            {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
        ],
        "patient": ref,
        "dateTime": now,
        "performer": [ref],
        "policy": [{"uri": POLICY_URI}],
        "provision": {"type": "permit", "period": {"start": now}},
    }


def give(engine: Engine, account: Account) -> Stored:
    """Record the consent (idempotent: an active one is returned as it is)."""
    pid = _patient_id(account)
    now = format_instant(clock.now_micros())
    criteria = f"patient=Patient/{pid}&category={CATEGORY_SYSTEM}|{CATEGORY}&status=active"
    with repository(engine, context_for(account)) as repo, repo.unit_of_work():
        return repo.create(_resource(pid, now), if_none_exist=criteria).stored


def revoke(engine: Engine, account: Account) -> Stored:
    """Withdraw the consent: ``inactive``, its period ends, open document requests are
    cancelled (in one transaction); delivered documents stay."""
    from medcard.onboarding.documents import cancel_open

    pid = _patient_id(account)
    now = format_instant(clock.now_micros())
    with repository(engine, context_for(account)) as repo:
        with repo.unit_of_work():
            current = active_in(repo, pid)
            if current is None:
                raise ConsentError("ob_consent_not_active")
            consent = current.json()
            consent["status"] = "inactive"
            provision = dict(consent.get("provision") or {"type": "permit"})
            provision["period"] = {**(provision.get("period") or {}), "end": now}
            consent["provision"] = provision
            stored = repo.update("Consent", current.id, consent, if_match=current.etag).stored
            cancel_open(repo, pid, "Согласие на обработку персональных данных отозвано")
        return stored
