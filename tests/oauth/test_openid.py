"""OpenID Connect done right (issue 22, items 1-2): the issuer is the server's public base
URL, discovery is at ``/.well-known/openid-configuration``, and a standard client (Authlib's
OAuth 2 client for the flow, joserfc for the checks an OIDC library makes) accepts the
ID token and the access token against the discovery document's keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.oauth.clients import OAuthClient
from medcard.config import Settings
from medcard.web.app import create_app
from tests.oauth.conftest import (
    DIARY_REDIRECT,
    PASSWORD,
    Browser,
    authorize_url,
    bearer,
    new_pkce,
    sign_in,
)

SCOPE = "openid fhirUser launch/patient patient/Observation.rs patient/Patient.rs"


def _keys(http: TestClient, conf: dict[str, Any]) -> KeySet:
    path = urlsplit(conf["jwks_uri"]).path
    return KeySet.import_key_set(http.get(path).json())


def _validate(token: str, keys: KeySet, algs: list[str], **expected: str) -> dict[str, Any]:
    """What an OIDC relying party checks: signature by a published key, iss, aud, exp."""
    decoded = jwt.decode(token, keys, algorithms=algs)
    jwt.JWTClaimsRegistry(
        leeway=0,
        **{k: {"essential": True, "value": v} for k, v in expected.items()},
        exp={"essential": True},
        sub={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


def _authlib_flow(
    browser: Browser, api: TestClient, client_id: str, conf: dict[str, Any], aud: str
) -> dict[str, Any]:
    """The authorization code flow driven by Authlib's client, the browser in between."""
    oauth = OAuth2Client(
        client_id,
        redirect_uri=DIARY_REDIRECT,
        scope=SCOPE,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        transport=api._transport,
    )
    verifier = secrets.token_urlsafe(48)
    url, _state = oauth.create_authorization_url(
        conf["authorization_endpoint"], code_verifier=verifier, nonce="n-42", aud=aud
    )
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    assert browser.http.get(path).status_code == 200
    answer = browser.http.post(path, data={"csrf_token": browser.csrf, "decision": "allow"})
    assert answer.status_code == 303, answer.text
    token: dict[str, Any] = oauth.fetch_token(
        conf["token_endpoint"],
        authorization_response=answer.headers["location"],
        code_verifier=verifier,
    )
    return token


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/fhir/.well-known/openid-configuration"]
)
def test_openid_configuration(api: TestClient, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    conf = r.json()
    base = "http://testserver"
    assert conf["issuer"] == base
    assert conf["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert conf["token_endpoint"] == f"{base}/oauth/token"
    assert conf["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert conf["response_types_supported"] == ["code"]
    assert conf["subject_types_supported"] == ["public"]
    assert conf["id_token_signing_alg_values_supported"] == ["ES256"]
    assert {"openid", "fhirUser", "launch/patient"} <= set(conf["scopes_supported"])
    assert {"iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"} <= set(conf["claims_supported"])
    assert "userinfo_endpoint" not in conf  # none is served, so none is advertised
    smart = api.get("/.well-known/smart-configuration").json()
    assert "sso-openid-connect" in smart["capabilities"]
    assert smart["issuer"] == conf["issuer"]
    assert smart["jwks_uri"] == conf["jwks_uri"]


def test_a_standard_client_validates_issuer_and_audience(
    anna: Browser, diary: OAuthClient, api: TestClient, patients: dict[str, str]
) -> None:
    conf = api.get("/.well-known/openid-configuration").json()
    keys = _keys(api, conf)
    algs = conf["id_token_signing_alg_values_supported"]
    fhir_base = "http://testserver/fhir"
    token = _authlib_flow(anna, api, diary.client_id, conf, fhir_base)
    id_claims = _validate(
        token["id_token"], keys, algs, iss=conf["issuer"], aud=diary.client_id, nonce="n-42"
    )
    assert id_claims["fhirUser"] == f"{fhir_base}/Patient/{patients['anna']}"
    access = _validate(token["access_token"], keys, algs, iss=conf["issuer"], aud=fhir_base)
    assert access["patient"] == patients["anna"]
    # A relying party expecting another issuer or audience refuses them.
    with pytest.raises(InvalidClaimError):
        _validate(token["id_token"], keys, algs, iss="medcard", aud=diary.client_id)
    with pytest.raises(InvalidClaimError):
        _validate(token["access_token"], keys, algs, aud="https://other.example/fhir")
    # ...and the FHIR server it names accepts it.
    r = api.get(f"/fhir/Patient/{patients['anna']}", headers=bearer(token["access_token"]))
    assert r.status_code == 200, r.text


@pytest.fixture
def public(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The server behind a proxy, configured with its public base URL."""
    configured = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        base_url="https://medcard.example/",
        rate_limits=False,
    )
    with TestClient(
        create_app(configured, engine), base_url="http://testserver", follow_redirects=False
    ) as c:
        yield c


def test_the_configured_base_url_is_the_one_issuer(
    public: TestClient,
    engine: Engine,
    diary: OAuthClient,
    patients: dict[str, str],
    token: Any,
) -> None:
    conf = public.get("/.well-known/openid-configuration").json()
    assert conf["issuer"] == "https://medcard.example"
    assert conf["token_endpoint"] == "https://medcard.example/oauth/token"
    account = accounts.create_account(
        engine,
        "anna-public@example.ru",
        PASSWORD,
        "patient",
        fhir_ref=f"Patient/{patients['anna']}",
    )
    browser = sign_in(public.app, engine, account)
    with browser.http:
        got = _authlib_flow(browser, public, diary.client_id, conf, "https://medcard.example/fhir")
    keys = _keys(public, conf)
    algs = conf["id_token_signing_alg_values_supported"]
    _validate(got["id_token"], keys, algs, iss=conf["issuer"], aud=diary.client_id)
    _validate(
        got["access_token"], keys, algs, iss=conf["issuer"], aud="https://medcard.example/fhir"
    )
    path = f"/fhir/Patient/{patients['anna']}"
    assert public.get(path, headers=bearer(got["access_token"])).status_code == 200
    # Tokens minted with the configured issuer name (the CLI's) keep working too.
    assert public.get(path, headers=bearer(token())).status_code == 200


def test_a_token_naming_another_issuer_is_refused(
    api: TestClient, issuer: Any, patients: dict[str, str]
) -> None:
    from dataclasses import replace

    stranger = replace(issuer, issuer="https://other.example").mint("system:test", "system/*.rs")
    r = api.get(f"/fhir/Patient/{patients['anna']}", headers=bearer(stranger))
    assert r.status_code == 401
    assert "iss" in r.text


def test_aud_is_required(anna: Browser, diary: OAuthClient) -> None:
    path, params = authorize_url(diary.client_id, pkce=new_pkce())
    del params["aud"]
    r = anna.http.get(path, params=params)
    assert r.status_code == 302
    error = parse_qs(urlsplit(r.headers["location"]).query)
    assert error["error"] == ["invalid_request"]
    assert "aud is required" in error["error_description"][0]
    assert error["state"] == ["st-1"]
