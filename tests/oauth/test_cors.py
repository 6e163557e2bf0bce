"""CORS for browser apps (issue 3): the FHIR API and the token and revocation endpoints
answer the configured origins (MEDCARD_CORS_ORIGINS) and nobody else; pages never."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from medcard.config import Settings
from medcard.web.app import create_app
from tests import factories
from tests.oauth.conftest import FHIR

APP_ORIGIN = "https://diary.example"


@pytest.fixture
def web(settings: Settings, engine: Engine, token: Any) -> Iterator[TestClient]:
    """An app configured for one browser-app origin, and a system token for the API."""
    configured = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        cors_origins=[APP_ORIGIN + "/"],  # a trailing slash is forgiven
    )
    with TestClient(
        create_app(configured, engine), base_url="http://testserver", follow_redirects=False
    ) as c:
        c.headers["Authorization"] = f"Bearer {token()}"
        yield c


def preflight(web: TestClient, path: str, origin: str, method: str, headers: str) -> Any:
    return web.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def test_fhir_preflight_from_a_configured_origin_is_allowed(web: TestClient) -> None:
    r = preflight(
        web, "/fhir/Patient/123", APP_ORIGIN, "PUT", "authorization, content-type, if-match"
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "PUT" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "if-match" in allowed
    assert "access-control-allow-credentials" not in r.headers  # bearer tokens, no cookies


def test_token_endpoint_preflight_from_a_configured_origin_is_allowed(web: TestClient) -> None:
    r = preflight(web, "/oauth/token", APP_ORIGIN, "POST", "content-type")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN


def test_other_origins_get_no_cors(web: TestClient) -> None:
    r = preflight(web, "/fhir/Patient", "https://evil.example", "GET", "authorization")
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    got = web.get("/fhir/Patient", headers={"Origin": "https://evil.example"})
    assert got.status_code == 200
    assert "access-control-allow-origin" not in got.headers


def test_responses_expose_etag_and_location_to_the_app(web: TestClient) -> None:
    created = web.post(
        "/fhir/Patient",
        json=factories.patient(),
        headers={"Origin": APP_ORIGIN, "Content-Type": FHIR},
    )
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = {
        h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")
    }
    assert {"etag", "location"} <= exposed
    assert "origin" in created.headers["vary"].lower()
    refused = web.get("/fhir/Patient", headers={"Origin": APP_ORIGIN, "Authorization": ""})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP_ORIGIN  # the app can read why


def test_pages_and_introspection_answer_no_other_site(web: TestClient) -> None:
    for path in ("/login", "/me", "/oauth/authorize"):
        r = web.get(path, headers={"Origin": APP_ORIGIN})
        assert "access-control-allow-origin" not in r.headers, path
    r = preflight(web, "/oauth/introspect", APP_ORIGIN, "POST", "content-type")
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    "origin",
    ["*", "https://a.example/app", "diary.example", "https://*.example", "ftp://a.example"],
)
def test_cors_origins_must_be_exact_origins(origin: str) -> None:
    with pytest.raises(ValidationError, match="CORS origin"):
        Settings(cors_origins=[origin])
