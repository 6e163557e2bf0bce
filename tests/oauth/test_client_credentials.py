"""Systems (a laboratory, a back-office portal) get tokens with client credentials."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth.oauth.clients import ClientError, create_client
from medcard.auth.oauth.revocation import unverified_claims
from tests.oauth.conftest import FHIR, audit_rows, bearer, observation


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
def lab_org(client: TestClient) -> str:
    r = client.post(
        "/fhir/Organization",
        json={"resourceType": "Organization", "name": "Лаборатория «Анализ»"},
        headers={"Content-Type": FHIR},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def lab(engine: Engine, lab_org: str) -> tuple[str, str]:
    client, secret = create_client(
        engine,
        "Лаборатория «Анализ»",
        public=False,
        scope="system/Observation.crus system/DiagnosticReport.cru system/ServiceRequest.rs",
        organization_ref=f"Organization/{lab_org}",
    )
    assert secret is not None
    return client.client_id, secret


def test_lab_gets_a_system_token_with_its_organization(
    lab: tuple[str, str], lab_org: str, api: TestClient, engine: Engine
) -> None:
    client_id, secret = lab
    r = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "system/Observation.cu"},
        headers=basic(client_id, secret),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "system/Observation.cu"
    assert "refresh_token" not in body
    assert "patient" not in body
    claims = unverified_claims(body["access_token"])
    assert claims["sub"] == f"Client/{client_id}"
    assert claims["organization"] == f"Organization/{lab_org}"
    assert claims["role"] == "lab"
    assert claims["orgs"] == [lab_org]
    issued = [r for r in audit_rows(engine, "oauth-token") if r.outcome == "0"]
    assert issued
    assert issued[-1].actor == f"Client/{client_id}"


def test_lab_token_delivers_results_for_referrals_addressed_to_the_lab(
    lab: tuple[str, str], lab_org: str, api: TestClient, client: TestClient,
    patients: dict[str, str],
) -> None:  # fmt: skip
    referral = client.post(
        "/fhir/ServiceRequest",
        json={
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "Общий анализ крови"},
            "subject": {"reference": f"Patient/{patients['anna']}"},
            "performer": [{"reference": f"Organization/{lab_org}"}],
        },
        headers={"Content-Type": FHIR},
    )
    assert referral.status_code == 201, referral.text
    client_id, secret = lab
    token = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    ).json()["access_token"]  # client_secret_post, no scope: everything registered
    headers = {**bearer(token), "Content-Type": FHIR}
    result = {
        **observation(patients["anna"]),
        "basedOn": [{"reference": f"ServiceRequest/{referral.json()['id']}"}],
    }
    assert api.post("/fhir/Observation", json=result, headers=headers).status_code == 201
    # Without a referral to this lab the role refuses, whatever the scope says.
    stray = api.post("/fhir/Observation", json=observation(patients["boris"]), headers=headers)
    assert stray.status_code == 403


def test_back_office_system_without_organization_acts_as_system(
    engine: Engine, api: TestClient
) -> None:
    portal, secret = create_client(engine, "Региональный портал", public=False, scope="system/*.rs")
    assert secret is not None
    body = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(portal.client_id, secret),
    ).json()
    claims = unverified_claims(body["access_token"])
    assert claims["role"] == "system"
    assert "organization" not in claims
    assert api.get("/fhir/Patient", headers=bearer(body["access_token"])).status_code == 200


def test_system_scope_is_narrowed_to_the_registration(
    lab: tuple[str, str], api: TestClient
) -> None:
    client_id, secret = lab
    r = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.* patient/*.* user/*.*"},
        headers=basic(client_id, secret),
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == (
        "system/DiagnosticReport.cru system/Observation.crus system/ServiceRequest.rs"
    )
    only_foreign = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "system/Condition.r patient/*.r"},
        headers=basic(client_id, secret),
    )
    assert only_foreign.status_code == 400
    assert only_foreign.json()["error"] == "invalid_scope"


def test_wrong_secret_is_refused_and_audited(
    lab: tuple[str, str], api: TestClient, engine: Engine
) -> None:
    client_id, _ = lab
    r = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, "Xq9-not-the-secret"),
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    refused = [r for r in audit_rows(engine, "oauth-token") if r.outcome == "4"]
    assert refused
    assert refused[-1].client_id == client_id
    assert "Xq9-not-the-secret" not in refused[-1].detail


def test_public_app_cannot_use_client_credentials(diary: Any, api: TestClient) -> None:
    r = api.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": diary.client_id}
    )
    assert r.status_code in (400, 401)
    assert r.json()["error"] in ("invalid_client", "unauthorized_client")


def test_unknown_grant_type_and_wrong_content_type(lab: tuple[str, str], api: TestClient) -> None:
    client_id, secret = lab
    r = api.post("/oauth/token", data={"grant_type": "password"}, headers=basic(client_id, secret))
    assert r.json()["error"] == "unsupported_grant_type"
    j = api.post(
        "/oauth/token", json={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    assert j.status_code == 400
    assert j.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"public": True, "scope": "system/*.rs", "grant_types": ["client_credentials"]},
            "confidential",
        ),
        ({"public": True, "scope": "patient/*.rs"}, "redirect-uri"),
        ({"public": False, "scope": "patient/*.rs"}, "not allowed"),
        (
            {"public": True, "scope": "system/*.rs", "redirect_uris": ["https://a.example/cb"]},
            "not allowed",
        ),
        (
            {"public": True, "scope": "patient/*.rs", "redirect_uris": ["http://evil.example/cb"]},
            "https",
        ),
        (
            {"public": True, "scope": "patient/*.rs", "redirect_uris": ["https://a.example/cb#x"]},
            "fragment",
        ),
        (
            {"public": True, "scope": "patient/*.rs", "redirect_uris": ["javascript:alert(1)"]},
            "https",
        ),
    ],
)
def test_unsafe_registrations_are_refused(
    engine: Engine, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError, match=message):
        create_client(engine, "Приложение", **kwargs)
