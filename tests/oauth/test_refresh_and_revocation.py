"""Refresh tokens rotate on use; revocation reaches /fhir; introspection tells the truth."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth.oauth import revocation
from medcard.auth.oauth.clients import OAuthClient, create_client
from tests.oauth.conftest import (
    FHIR,
    Browser,
    audit_rows,
    authorize,
    bearer,
    exchange,
    observation,
)


def refresh(api: TestClient, client_id: str, token: str, **extra: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id, **extra}
    return api.post("/oauth/token", data=data)


def fhir_status(api: TestClient, access_token: str, patient_id: str) -> int:
    r = api.get(f"/fhir/Observation?patient={patient_id}", headers=bearer(access_token))
    return r.status_code


def test_refresh_token_rotates_and_the_old_one_is_refused(
    full_grant: dict[str, Any], diary: OAuthClient, api: TestClient, patients: dict[str, str]
) -> None:
    r = refresh(api, diary.client_id, full_grant["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != full_grant["refresh_token"]
    assert second["access_token"] != full_grant["access_token"]
    assert second["patient"] == patients["anna"]
    assert second["scope"] == full_grant["scope"]

    again = refresh(api, diary.client_id, full_grant["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_reused_refresh_token_ends_the_whole_grant(
    full_grant: dict[str, Any], diary: OAuthClient, api: TestClient, patients: dict[str, str]
) -> None:
    second = refresh(api, diary.client_id, full_grant["refresh_token"]).json()
    assert fhir_status(api, second["access_token"], patients["anna"]) == 200
    # The first refresh token comes back (it leaked): everything in the grant is revoked.
    assert refresh(api, diary.client_id, full_grant["refresh_token"]).status_code == 400
    assert refresh(api, diary.client_id, second["refresh_token"]).status_code == 400
    assert fhir_status(api, second["access_token"], patients["anna"]) == 401


def test_refresh_may_narrow_the_scope_but_never_widen_it(
    full_grant: dict[str, Any], diary: OAuthClient, api: TestClient
) -> None:
    wider = refresh(api, diary.client_id, full_grant["refresh_token"], scope="patient/*.cruds")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    narrower = refresh(
        api, diary.client_id, full_grant["refresh_token"], scope="patient/Observation.r"
    )
    assert narrower.status_code == 200, narrower.text
    body = narrower.json()
    assert body["scope"] == "patient/Observation.r"
    # The rotated refresh token keeps the grant's scope (RFC 6749 §6).
    back = refresh(api, diary.client_id, body["refresh_token"]).json()
    assert back["scope"] == full_grant["scope"]


def test_refresh_token_is_bound_to_its_client(
    full_grant: dict[str, Any], engine: Engine, api: TestClient
) -> None:
    other, _ = create_client(
        engine, "Другое приложение", public=True,
        redirect_uris=["https://other.example/cb"], scope="patient/*.rs offline_access",
    )  # fmt: skip
    r = refresh(api, other.client_id, full_grant["refresh_token"])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_revoked_access_token_is_refused_at_fhir(
    full_grant: dict[str, Any], diary: OAuthClient, api: TestClient, patients: dict[str, str],
    engine: Engine,
) -> None:  # fmt: skip
    token = full_grant["access_token"]
    assert fhir_status(api, token, patients["anna"]) == 200
    r = api.post("/oauth/revoke", data={"token": token, "client_id": diary.client_id})
    assert r.status_code == 200
    deadline = time.monotonic() + revocation.TTL_S + 1
    while fhir_status(api, token, patients["anna"]) != 401:
        assert time.monotonic() < deadline, "revocation did not reach /fhir within the cache TTL"
        time.sleep(0.2)
    rows = [r for r in audit_rows(engine, "oauth-revoke") if r.outcome == "0"]
    assert rows
    assert rows[-1].patient_id == patients["anna"]
    # The refresh token is a separate credential: it still works.
    assert refresh(api, diary.client_id, full_grant["refresh_token"]).status_code == 200


def test_revocation_is_effective_in_other_processes_within_the_cache_ttl(
    full_grant: dict[str, Any], diary: OAuthClient, engine: Engine, api: TestClient
) -> None:
    jti = revocation.jti_of(full_grant["access_token"])
    assert revocation.is_revoked(engine, jti) is False  # cached "not revoked" now
    api.post(
        "/oauth/revoke", data={"token": full_grant["access_token"], "client_id": diary.client_id}
    )
    # This process forgot its cached answer at once; a process that did not revoke it
    # keeps its answer at most TTL_S seconds: simulate by re-caching the old answer.
    assert revocation.is_revoked(engine, jti) is True
    revocation._cache[jti] = (time.monotonic() + 0.3, False)
    assert revocation.is_revoked(engine, jti) is False
    time.sleep(0.35)
    assert revocation.is_revoked(engine, jti) is True
    assert revocation.TTL_S <= 5


def test_revoking_the_refresh_token_revokes_its_access_tokens(
    full_grant: dict[str, Any], diary: OAuthClient, api: TestClient, patients: dict[str, str]
) -> None:
    second = refresh(api, diary.client_id, full_grant["refresh_token"]).json()
    r = api.post(
        "/oauth/revoke",
        data={
            "token": second["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": diary.client_id,
        },
    )
    assert r.status_code == 200
    assert refresh(api, diary.client_id, second["refresh_token"]).status_code == 400
    assert fhir_status(api, second["access_token"], patients["anna"]) == 401
    assert fhir_status(api, full_grant["access_token"], patients["anna"]) == 401


def test_a_client_cannot_revoke_another_clients_token(
    full_grant: dict[str, Any], engine: Engine, api: TestClient, patients: dict[str, str]
) -> None:
    other, _ = create_client(
        engine, "Чужое приложение", public=True,
        redirect_uris=["https://other.example/cb"], scope="patient/*.rs",
    )  # fmt: skip
    r = api.post(
        "/oauth/revoke", data={"token": full_grant["access_token"], "client_id": other.client_id}
    )
    assert r.status_code == 400
    assert fhir_status(api, full_grant["access_token"], patients["anna"]) == 200
    refused = [r for r in audit_rows(engine, "oauth-revoke") if r.outcome == "4"]
    assert refused
    assert refused[-1].client_id == other.client_id


def test_revoking_an_unknown_token_is_quietly_accepted(diary: OAuthClient, api: TestClient) -> None:
    for junk in ("nonsense", "a.b.c", "0123456789abcdef.xyz"):
        r = api.post("/oauth/revoke", data={"token": junk, "client_id": diary.client_id})
        assert r.status_code == 200, r.text


def test_introspection_reports_an_active_token(
    full_grant: dict[str, Any], diary: OAuthClient, api: TestClient, patients: dict[str, str]
) -> None:
    r = api.post(
        "/oauth/introspect",
        data={"token": full_grant["access_token"], "client_id": diary.client_id},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["active"] is True
    assert body["scope"] == full_grant["scope"]
    assert body["sub"] == f"Patient/{patients['anna']}"
    assert body["patient"] == patients["anna"]
    assert body["client_id"] == diary.client_id
    assert body["exp"] > time.time()

    rt = api.post(
        "/oauth/introspect",
        data={"token": full_grant["refresh_token"], "client_id": diary.client_id},
    ).json()
    assert rt["active"] is True
    assert rt["token_type"] == "refresh_token"
    assert rt["patient"] == patients["anna"]


def test_introspection_says_inactive_after_revocation_and_for_strangers(
    full_grant: dict[str, Any], diary: OAuthClient, engine: Engine, api: TestClient
) -> None:
    other, _ = create_client(
        engine, "Чужое приложение", public=True,
        redirect_uris=["https://other.example/cb"], scope="patient/*.rs",
    )  # fmt: skip
    token = full_grant["access_token"]
    stranger = api.post("/oauth/introspect", data={"token": token, "client_id": other.client_id})
    assert stranger.json() == {"active": False}  # nothing about another client's token leaks
    api.post("/oauth/revoke", data={"token": token, "client_id": diary.client_id})
    after = api.post("/oauth/introspect", data={"token": token, "client_id": diary.client_id})
    assert after.json() == {"active": False}


def test_introspecting_a_tampered_token_is_inactive_and_audited(
    full_grant: dict[str, Any], diary: OAuthClient, engine: Engine, api: TestClient
) -> None:
    header, payload, sig = full_grant["access_token"].split(".")
    forged = f"{header}.{payload[:-4]}AAAA.{sig}"
    r = api.post("/oauth/introspect", data={"token": forged, "client_id": diary.client_id})
    assert r.json() == {"active": False}
    rows = audit_rows(engine, "oauth-introspect")
    assert any(r.outcome == "4" and "failed verification" in r.detail for r in rows)


def test_writing_with_a_refreshed_token_still_works(
    full_grant: dict[str, Any], diary: OAuthClient, api: TestClient, patients: dict[str, str]
) -> None:
    second = refresh(api, diary.client_id, full_grant["refresh_token"]).json()
    r = api.post(
        "/fhir/Observation",
        json=observation(patients["anna"], 64),
        headers={**bearer(second["access_token"]), "Content-Type": FHIR},
    )
    assert r.status_code == 201, r.text


def test_authorization_and_grant_are_separate_per_consent(
    anna: Browser, diary: OAuthClient, api: TestClient, patients: dict[str, str]
) -> None:
    """Revoking one grant leaves another grant of the same app and patient alone."""
    first = exchange(api, diary.client_id, authorize(anna, diary.client_id)).json()
    second = exchange(api, diary.client_id, authorize(anna, diary.client_id)).json()
    api.post("/oauth/revoke", data={"token": first["refresh_token"], "client_id": diary.client_id})
    assert fhir_status(api, first["access_token"], patients["anna"]) == 401
    assert fhir_status(api, second["access_token"], patients["anna"]) == 200
