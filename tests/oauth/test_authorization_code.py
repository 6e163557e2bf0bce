"""The patient app flow end to end: consent → code → token → FHIR, and its limits."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth.oauth.clients import OAuthClient
from medcard.auth.oauth.revocation import unverified_claims
from medcard.auth.tokens import TokenIssuer
from tests.oauth.conftest import (
    DIARY_REDIRECT,
    FHIR,
    Browser,
    audit_rows,
    authorize,
    authorize_url,
    bearer,
    consent,
    exchange,
    new_pkce,
    observation,
)


def test_diary_app_writes_the_patients_own_observation_and_nothing_else(
    anna: Browser, diary: OAuthClient, api: TestClient, patients: dict[str, str]
) -> None:
    auth = authorize(anna, diary.client_id, state="xyz")
    assert auth.location.startswith(DIARY_REDIRECT + "?")
    assert auth.state == "xyz"

    r = exchange(api, diary.client_id, auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["patient"] == patients["anna"]
    assert body["scope"] == "patient/Observation.crs launch/patient offline_access"
    assert body["refresh_token"]
    claims = unverified_claims(body["access_token"])
    assert claims["sub"] == f"Patient/{patients['anna']}"
    assert claims["patient"] == patients["anna"]
    assert claims["client_id"] == diary.client_id
    assert claims["role"] == "patient"

    headers = {**bearer(body["access_token"]), "Content-Type": FHIR}
    mine = api.post("/fhir/Observation", json=observation(patients["anna"]), headers=headers)
    assert mine.status_code == 201, mine.text
    read = api.get(f"/fhir/Observation/{mine.json()['id']}", headers=headers)
    assert read.status_code == 200

    # Another patient's compartment: refused.
    theirs = api.post("/fhir/Observation", json=observation(patients["boris"]), headers=headers)
    assert theirs.status_code == 403, theirs.text
    # A type the app was not granted: refused.
    assert api.get("/fhir/Condition", headers=headers).status_code == 403
    # Nor was it granted update, though the app is registered for it.
    obs = {**mine.json(), "valueQuantity": {"value": 80, "unit": "/min"}}
    put = api.put(f"/fhir/Observation/{obs['id']}", json=obs, headers=headers)
    assert put.status_code == 403, put.text


def test_consent_screen_names_the_app_and_says_what_it_may_do(
    anna: Browser, diary: OAuthClient
) -> None:
    path, params = authorize_url(
        diary.client_id,
        scope="launch/patient offline_access patient/Observation.cr system/*.*",
        pkce=new_pkce(),
    )
    ru = anna.http.get(path, params=params)
    assert ru.status_code == 200
    assert "«Дневник самочувствия» просит доступ" in ru.text
    assert (
        "Просматривать и добавлять показатели самочувствия и результаты анализов (Observation)"
        in ru.text
    )
    assert "Анна Иванова" in ru.text
    assert "system/*.*" in ru.text  # named as something it will not get
    assert "https://diary.example" in ru.headers["content-security-policy"]
    assert 'name="decision" value="allow"' in ru.text

    en = anna.http.get(path, params={**params, "lang": "en"})
    assert "“Дневник самочувствия” asks for access to your medical card" in en.text
    assert "Read and add well-being readings and test results (Observation)" in en.text
    assert "Keep access after you close the app" in en.text


def test_patient_who_denies_sends_the_app_access_denied(
    anna: Browser, diary: OAuthClient, engine: Engine
) -> None:
    r = consent(anna, diary.client_id, decision="deny", pkce=new_pkce(), state="s9")
    assert r.status_code == 303
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s9"]
    assert "code" not in query
    denied = [row for row in audit_rows(engine) if row.outcome == "4"]
    assert any("patient denied" in row.detail for row in denied)


def test_consent_needs_a_signed_in_patient(app: Any, diary: OAuthClient) -> None:
    path, params = authorize_url(diary.client_id, pkce=new_pkce())
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as stranger:
        r = stranger.get(path, params=params)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def test_consent_post_without_csrf_token_is_refused(anna: Browser, diary: OAuthClient) -> None:
    path, params = authorize_url(diary.client_id, pkce=new_pkce())
    r = anna.http.post(path, params=params, data={"decision": "allow"})
    assert r.status_code == 403
    assert "location" not in r.headers


def test_token_without_offline_access_has_no_refresh_token(
    anna: Browser, diary: OAuthClient, api: TestClient
) -> None:
    auth = authorize(anna, diary.client_id, scope="patient/Observation.rs")
    body = exchange(api, diary.client_id, auth).json()
    assert "refresh_token" not in body
    assert body["scope"] == "patient/Observation.rs"
    assert body["patient"]  # a patient app always works inside its patient's card


def test_openid_fhiruser_gives_an_id_token_for_the_app(
    anna: Browser,
    diary: OAuthClient,
    api: TestClient,
    issuer: TokenIssuer,
    patients: dict[str, str],
) -> None:
    auth = authorize(
        anna, diary.client_id, scope="openid fhirUser patient/Observation.r", nonce="n-0S6"
    )
    body = exchange(api, diary.client_id, auth).json()
    id_claims = issuer.verify(body["id_token"], ("http://testserver",))
    assert id_claims["iss"] == "http://testserver"  # the public base URL (issue 22)
    assert id_claims["aud"] == diary.client_id
    assert id_claims["nonce"] == "n-0S6"
    assert id_claims["fhirUser"] == f"http://testserver/fhir/Patient/{patients['anna']}"
    assert unverified_claims(body["access_token"])["fhirUser"] == f"Patient/{patients['anna']}"


def test_every_issue_is_audited_with_the_patient_and_no_secret(
    full_grant: dict[str, Any], engine: Engine, patients: dict[str, str], diary: OAuthClient
) -> None:
    rows = audit_rows(engine)
    allowed = [r for r in rows if r.interaction == "oauth-authorize" and r.outcome == "0"]
    issued = [r for r in rows if r.interaction == "oauth-token" and r.outcome == "0"]
    assert len(allowed) == 1
    assert len(issued) == 1
    assert issued[0].patient_id == patients["anna"]
    assert issued[0].client_id == diary.client_id
    assert issued[0].actor == f"Client/{diary.client_id}"
    assert "authorization_code: issued patient/Observation.crs" in issued[0].detail
    for row in rows:
        for secret in (full_grant["access_token"], full_grant["refresh_token"]):
            assert secret not in row.detail
            assert secret.split(".")[-1] not in row.detail
