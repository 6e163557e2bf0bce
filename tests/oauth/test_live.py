"""The whole patient-app flow against a real server socket, as an app would run it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.oauth.clients import OAuthClient
from medcard.auth.sessions import COOKIE_NAME, create_session
from tests.oauth.conftest import DIARY_REDIRECT, FHIR, PASSWORD, new_pkce, observation


@pytest.mark.live
def test_diary_app_over_http(
    live_server: str, engine: Engine, diary: OAuthClient, patients: dict[str, str]
) -> None:
    account = accounts.create_account(
        engine, "live@example.ru", PASSWORD, "patient", fhir_ref=f"Patient/{patients['anna']}"
    )
    cookie, csrf = create_session(engine, account.id, mfa_ok=True)
    conf = httpx.get(f"{live_server}/fhir/.well-known/smart-configuration").json()
    pkce = new_pkce()
    params = {
        "response_type": "code",
        "client_id": diary.client_id,
        "redirect_uri": DIARY_REDIRECT,
        "scope": "launch/patient patient/Observation.crs",
        "state": "live",
        "aud": f"{live_server}/fhir",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    with httpx.Client(cookies={COOKIE_NAME: cookie}, follow_redirects=False) as browser:
        page = browser.get(conf["authorization_endpoint"], params=params)
        assert page.status_code == 200
        answer = browser.post(
            conf["authorization_endpoint"],
            params=params,
            data={"csrf_token": csrf, "decision": "allow"},
        )
    assert answer.status_code == 303
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]

    token = httpx.post(
        conf["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": DIARY_REDIRECT,
            "client_id": diary.client_id,
            "code_verifier": pkce.verifier,
        },
    ).json()
    headers = {"Authorization": f"Bearer {token['access_token']}", "Content-Type": FHIR}
    created = httpx.post(
        f"{live_server}/fhir/Observation", json=observation(token["patient"]), headers=headers
    )
    assert created.status_code == 201, created.text
    httpx.post(
        conf["revocation_endpoint"],
        data={"token": token["access_token"], "client_id": diary.client_id},
    )
    again = httpx.get(f"{live_server}/fhir/Observation/{created.json()['id']}", headers=headers)
    assert again.status_code == 401
