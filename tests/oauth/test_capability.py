"""The CapabilityStatement tells SMART apps where the OAuth endpoints are (issue 3)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def oauth_uris(statement: dict[str, Any]) -> dict[str, str]:
    security = statement["rest"][0]["security"]
    (ext,) = [e for e in security["extension"] if e["url"] == OAUTH_URIS]
    return {e["url"]: e["valueUri"] for e in ext["extension"]}


def test_metadata_names_the_oauth_endpoints_of_smart_discovery(api: TestClient) -> None:
    r = api.get("/fhir/metadata")  # no token needed
    assert r.status_code == 200
    uris = oauth_uris(r.json())
    assert uris == {
        "authorize": "http://testserver/oauth/authorize",
        "token": "http://testserver/oauth/token",
        "revoke": "http://testserver/oauth/revoke",
        "introspect": "http://testserver/oauth/introspect",
    }
    conf = api.get("/fhir/.well-known/smart-configuration").json()
    assert uris["authorize"] == conf["authorization_endpoint"]
    assert uris["token"] == conf["token_endpoint"]
    assert uris["revoke"] == conf["revocation_endpoint"]
    assert uris["introspect"] == conf["introspection_endpoint"]
    service = r.json()["rest"][0]["security"]["service"][0]["coding"][0]
    assert service["code"] == "SMART-on-FHIR"
    assert "permission-user" in conf["capabilities"]  # staff apps get user/ scopes


def test_oauth_uris_follow_the_base_url_the_client_used(app: Any) -> None:
    with TestClient(app, base_url="https://medcard.example:8443") as c:
        uris = oauth_uris(c.get("/fhir/metadata").json())
    assert uris["token"] == "https://medcard.example:8443/oauth/token"
    assert uris["authorize"] == "https://medcard.example:8443/oauth/authorize"
