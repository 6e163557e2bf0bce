"""A deny Consent over the card is refused with the rule (onboarding/consent_rules.py):
the medical card cannot be refused, so such a Consent would be stored and mean nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.onboarding.consent_rules import RULE
from tests.onboarding.conftest import make_card

SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"


def _consent(pid: str, provision: dict[str, Any], scope: str = "patient-privacy") -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": SCOPE, "code": scope}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "performer": [{"reference": f"Patient/{pid}"}],
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}
            ]
        },
        "provision": provision,
    }


def _assert_refused(resp: Any) -> None:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome"
    error, russian = body["issue"]
    assert error["severity"] == "error"
    assert RULE in error["diagnostics"]
    assert "cannot be refused" in error["diagnostics"]
    assert error["expression"] == ["Consent.provision.type"]
    assert RULE in russian["diagnostics"]
    assert "отказаться от неё нельзя" in russian["diagnostics"]


def test_patient_deny_over_own_card_is_refused_and_nothing_is_stored(
    client: TestClient, engine: Engine, token: Callable[..., str]
) -> None:
    pid = make_card(engine)
    own = {"Authorization": f"Bearer {token('patient/*.cruds', patient=pid)}"}
    _assert_refused(client.post("/fhir/Consent", json=_consent(pid, {"type": "deny"}), headers=own))
    assert not client.get(f"/fhir/Consent?patient=Patient/{pid}").json().get("entry")


def test_deny_of_some_entries_by_anyone_is_refused(client: TestClient, engine: Engine) -> None:
    """A nested deny over the card's diagnostic reports, written with a system token."""
    pid = make_card(engine)
    provision = {
        "type": "permit",
        "provision": [{"type": "deny", "class": [{"code": "DiagnosticReport"}]}],
    }
    _assert_refused(client.post("/fhir/Consent", json=_consent(pid, provision)))


def test_turning_a_permit_into_a_deny_is_refused(client: TestClient, engine: Engine) -> None:
    pid = make_card(engine)
    made = client.post("/fhir/Consent", json=_consent(pid, {"type": "permit"}))
    assert made.status_code == 201, made.text
    changed = {**made.json(), "provision": {"type": "deny"}}
    _assert_refused(client.put(f"/fhir/Consent/{made.json()['id']}", json=changed))


def test_a_transaction_with_a_deny_consent_fails_whole(client: TestClient, engine: Engine) -> None:
    pid = make_card(engine)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _consent(pid, {"type": "permit"}),
                "request": {"method": "POST", "url": "Consent"},
            },
            {
                "resource": _consent(pid, {"type": "deny"}),
                "request": {"method": "POST", "url": "Consent"},
            },
        ],
    }
    resp = client.post("/fhir", json=bundle)
    assert resp.status_code == 422, resp.text
    assert RULE in resp.text
    assert not client.get(f"/fhir/Consent?patient=Patient/{pid}").json().get("entry")


def test_refusing_treatment_or_research_and_closed_denies_stay_allowed(
    client: TestClient, engine: Engine
) -> None:
    pid = make_card(engine)
    for scope in ("treatment", "research"):
        resp = client.post("/fhir/Consent", json=_consent(pid, {"type": "deny"}, scope=scope))
        assert resp.status_code == 201, (scope, resp.text)
    closed = {**_consent(pid, {"type": "deny"}), "status": "inactive"}
    assert client.post("/fhir/Consent", json=closed).status_code == 201
