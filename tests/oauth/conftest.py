"""Fixtures for the OAuth tests: patients, a signed-in patient's browser, registered apps,
and helpers that walk the authorization code + PKCE flow over HTTP."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard.auth import accounts
from medcard.auth.oauth.clients import OAuthClient, create_client
from medcard.auth.sessions import COOKIE_NAME, create_session
from medcard.db.tables import audit_log

DIARY_REDIRECT = "https://diary.example/callback"
DIARY_SCOPE = (
    "launch/patient openid fhirUser offline_access patient/Observation.crus patient/Patient.rs"
)
PASSWORD = "длинный пароль для теста 42"
FHIR = "application/fhir+json"


@dataclass
class Browser:
    """A patient's browser: signed in, cookies kept, redirects not followed."""

    http: TestClient
    csrf: str
    account: accounts.Account


@dataclass
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@pytest.fixture
def api(app: Any) -> Iterator[TestClient]:
    """An HTTP client with no credentials (apps call the token endpoint like this)."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


def make_patient(client: TestClient, family: str) -> str:
    r = client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"family": family, "given": ["Анна"]}]},
        headers={"Content-Type": FHIR},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def patients(client: TestClient) -> dict[str, str]:
    """Two patients: 'anna' (who uses the diary app) and 'boris' (someone else)."""
    return {"anna": make_patient(client, "Иванова"), "boris": make_patient(client, "Петров")}


def sign_in(app: Any, engine: Engine, account: accounts.Account) -> Browser:
    cookie, csrf = create_session(engine, account.id, mfa_ok=True)
    http = TestClient(app, base_url="http://testserver", follow_redirects=False)
    http.cookies.set(COOKIE_NAME, cookie)
    return Browser(http, csrf, account)


@pytest.fixture
def anna(app: Any, engine: Engine, patients: dict[str, str]) -> Iterator[Browser]:
    account = accounts.create_account(
        engine,
        "anna@example.ru",
        PASSWORD,
        "patient",
        display_name="Анна Иванова",
        fhir_ref=f"Patient/{patients['anna']}",
    )
    browser = sign_in(app, engine, account)
    with browser.http:
        yield browser


@pytest.fixture
def diary(engine: Engine) -> OAuthClient:
    client, secret = create_client(
        engine,
        "Дневник самочувствия",
        public=True,
        redirect_uris=[DIARY_REDIRECT, "http://localhost:8765/cb"],
        scope=DIARY_SCOPE,
    )
    assert secret is None
    return client


@dataclass
class Authorized:
    code: str
    state: str
    pkce: Pkce
    location: str


def authorize_url(
    client_id: str,
    *,
    scope: str = "launch/patient offline_access patient/Observation.crs",
    pkce: Pkce | None = None,
    redirect_uri: str = DIARY_REDIRECT,
    state: str = "st-1",
    **extra: str,
) -> tuple[str, dict[str, str]]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": "http://testserver/fhir",
    }
    if pkce is not None:
        params["code_challenge"] = pkce.challenge
        params["code_challenge_method"] = "S256"
    params.update(extra)
    return "/oauth/authorize", params


def consent(
    browser: Browser, client_id: str, decision: str = "allow", *, patient: str = "", **kw: Any
) -> Any:
    """Open the consent screen, then answer it (a parent picks ``patient``'s card);
    returns the POST response."""
    path, params = authorize_url(client_id, **kw)
    page = browser.http.get(path, params=params)
    assert page.status_code == 200, page.text
    data = {"csrf_token": browser.csrf, "decision": decision}
    if patient:
        data["patient"] = patient
    return browser.http.post(path, params=params, data=data)


def authorize(browser: Browser, client_id: str, **kw: Any) -> Authorized:
    pkce = kw.pop("pkce", None) or new_pkce()
    r = consent(browser, client_id, pkce=pkce, **kw)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    query = parse_qs(urlsplit(location).query)
    return Authorized(query["code"][0], query["state"][0], pkce, location)


def exchange(api: TestClient, client_id: str, auth: Authorized, **overrides: str) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": auth.code,
        "redirect_uri": DIARY_REDIRECT,
        "client_id": client_id,
        "code_verifier": auth.pkce.verifier,
        **overrides,
    }
    return api.post("/oauth/token", data=data)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": FHIR}


def observation(patient_id: str, value: float = 72) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Пульс"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2026-11-20T08:00:00+03:00",
        "valueQuantity": {"value": value, "unit": "/min"},
    }


def audit_rows(engine: Engine, interaction_prefix: str = "oauth-") -> list[Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id)).all()
    return [r for r in rows if r.interaction.startswith(interaction_prefix)]


@pytest.fixture
def full_grant(anna: Browser, diary: OAuthClient, api: TestClient) -> dict[str, Any]:
    """Anna allowed the diary app (with offline_access): the token response."""
    auth = authorize(anna, diary.client_id)
    r = exchange(api, diary.client_id, auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
