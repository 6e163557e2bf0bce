"""Abuse cases (issue 3): each is refused with a clear error, audited, and leaks nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard import clock
from medcard.auth import accounts
from medcard.auth.oauth import store
from medcard.auth.oauth.clients import OAuthClient, create_client
from medcard.auth.oauth.revocation import unverified_claims
from tests.oauth.conftest import (
    DIARY_REDIRECT,
    FHIR,
    PASSWORD,
    Browser,
    audit_rows,
    authorize,
    authorize_url,
    bearer,
    consent,
    exchange,
    new_pkce,
    observation,
    sign_in,
)


def refused(engine: Engine, interaction: str) -> list[Any]:
    return [r for r in audit_rows(engine, interaction) if r.outcome == "4"]


def test_expired_code_is_refused(
    anna: Browser, diary: OAuthClient, api: TestClient, engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    auth = authorize(anna, diary.client_id)
    later = clock.now_micros() + (store.CODE_LIFETIME_S + 1) * 1_000_000
    monkeypatch.setattr(clock, "now_micros", lambda: later)
    r = exchange(api, diary.client_id, auth)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    assert "expired" in r.json()["error_description"]
    assert "expired" in refused(engine, "oauth-token")[-1].detail


def test_replayed_code_is_refused_and_revokes_what_it_produced(
    anna: Browser, diary: OAuthClient, api: TestClient, engine: Engine, patients: dict[str, str]
) -> None:
    auth = authorize(anna, diary.client_id)
    first = exchange(api, diary.client_id, auth)
    assert first.status_code == 200
    token = first.json()["access_token"]
    search = f"/fhir/Observation?patient={patients['anna']}"
    assert api.get(search, headers=bearer(token)).status_code == 200

    second = exchange(api, diary.client_id, auth)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert "already used" in second.json()["error_description"]
    # RFC 6749 §4.1.2: tokens issued for a code used twice are revoked.
    assert api.get(search, headers=bearer(token)).status_code == 401
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": first.json()["refresh_token"],
        "client_id": diary.client_id,
    }
    assert api.post("/oauth/token", data=refresh).status_code == 400
    rows = refused(engine, "oauth-token")
    assert rows[-1].patient_id == patients["anna"]
    assert auth.code not in rows[-1].detail


def test_pkce_verifier_mismatch_is_refused_and_burns_the_code(
    anna: Browser, diary: OAuthClient, api: TestClient, engine: Engine
) -> None:
    auth = authorize(anna, diary.client_id)
    wrong = exchange(api, diary.client_id, auth, code_verifier=new_pkce().verifier)
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "Code challenge failed."}
    # The code was single-use even though the attempt failed.
    assert exchange(api, diary.client_id, auth).status_code == 400
    assert any("Code challenge failed" in r.detail for r in refused(engine, "oauth-token"))


def test_missing_verifier_is_refused(anna: Browser, diary: OAuthClient, api: TestClient) -> None:
    auth = authorize(anna, diary.client_id)
    r = api.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": auth.code,
            "redirect_uri": DIARY_REDIRECT,
            "client_id": diary.client_id,
        },
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({}, "PKCE is required"),
        ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "S256"),
        ({"code_challenge": "a" * 43}, "S256"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "code_challenge"),
    ],
)
def test_authorization_without_s256_pkce_goes_back_with_an_error(
    anna: Browser, diary: OAuthClient, engine: Engine, extra: dict[str, str], reason: str
) -> None:
    path, params = authorize_url(diary.client_id, **extra)
    r = anna.http.get(path, params=params)
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith(DIARY_REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["invalid_request"]
    assert reason in query["error_description"][0]
    assert query["state"] == ["st-1"]
    assert refused(engine, "oauth-authorize")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "https://diary.example/callback.evil.example",
        "https://diary.example/callback/../steal",
        "https://diary.example/callback?next=https://evil.example",
        "https://diary.example.evil.example/callback",
        "http://diary.example/callback",
        "https://DIARY.example/callback",
        "",
    ],
)
def test_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(
    anna: Browser, diary: OAuthClient, engine: Engine, redirect_uri: str
) -> None:
    path, params = authorize_url(diary.client_id, pkce=new_pkce(), redirect_uri=redirect_uri)
    if not redirect_uri:
        del params["redirect_uri"]
    r = anna.http.get(path, params=params)
    assert r.status_code == 400
    assert "location" not in r.headers
    assert "Запрос приложения отклонён" in r.text
    assert "evil" not in r.headers.get("refresh", "")
    # Nor does Allow (if someone posts it anyway) produce a code.
    post = anna.http.post(path, params=params, data={"csrf_token": anna.csrf, "decision": "allow"})
    assert post.status_code == 400
    assert "location" not in post.headers
    assert refused(engine, "oauth-authorize")


def test_unknown_client_gets_an_error_page(anna: Browser) -> None:
    path, params = authorize_url("no-such-app", pkce=new_pkce())
    r = anna.http.get(path, params={**params, "lang": "en"})
    assert r.status_code == 400
    assert "location" not in r.headers
    assert "request was refused" in r.text


def test_redirect_uri_must_match_at_the_token_endpoint(
    anna: Browser, diary: OAuthClient, api: TestClient
) -> None:
    auth = authorize(anna, diary.client_id)
    r = exchange(api, diary.client_id, auth, redirect_uri="http://localhost:8765/cb")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_code_of_one_app_is_useless_to_another(
    anna: Browser, diary: OAuthClient, api: TestClient, engine: Engine
) -> None:
    thief, _ = create_client(
        engine, "Похититель", public=True, redirect_uris=[DIARY_REDIRECT], scope="patient/*.cruds",
    )  # fmt: skip
    auth = authorize(anna, diary.client_id)
    r = exchange(api, thief.client_id, auth)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    # ... and the rightful app can still use it.
    assert exchange(api, diary.client_id, auth).status_code == 200


def test_patient_app_asking_for_system_scopes_gets_only_patient_scopes(
    anna: Browser, diary: OAuthClient, api: TestClient, engine: Engine, patients: dict[str, str]
) -> None:
    auth = authorize(
        anna, diary.client_id, scope="system/*.* user/*.* patient/*.* patient/Observation.c"
    )
    body = exchange(api, diary.client_id, auth).json()
    # patient/*.* meets the registration (Observation.crus, Patient.rs) and no more.
    assert body["scope"] == "patient/Observation.crus patient/Patient.rs"
    token = body["access_token"]
    assert unverified_claims(token)["role"] == "patient"
    seen = api.get("/fhir/Patient", headers=bearer(token)).json()
    assert [e["resource"]["id"] for e in seen.get("entry", [])] == [patients["anna"]]
    assert api.get("/fhir/Condition", headers=bearer(token)).status_code == 403
    other = api.post(
        "/fhir/Observation",
        json=observation(patients["boris"]),
        headers={**bearer(token), "Content-Type": FHIR},
    )
    assert other.status_code == 403
    allowed = [r for r in audit_rows(engine, "oauth-authorize") if r.outcome == "0"][-1]
    assert "not granted: system/*.* user/*.*" in allowed.detail


def test_patient_app_asking_only_for_what_it_cannot_have_is_refused(
    anna: Browser, diary: OAuthClient, engine: Engine
) -> None:
    path, params = authorize_url(
        diary.client_id, scope="system/*.* user/Patient.r", pkce=new_pkce()
    )
    r = anna.http.get(path, params=params)
    assert r.status_code == 302
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["error"] == ["invalid_scope"]
    assert refused(engine, "oauth-authorize")


def test_query_qualified_scopes_are_not_granted(
    anna: Browser, diary: OAuthClient, api: TestClient
) -> None:
    auth = authorize(
        anna, diary.client_id,
        scope="patient/Observation.rs?category=vital-signs patient/Patient.r",
    )  # fmt: skip
    assert exchange(api, diary.client_id, auth).json()["scope"] == "patient/Patient.r"


def test_staff_get_nothing_from_an_app_registered_for_patient_scopes_only(
    app: Any, engine: Engine, diary: OAuthClient, client: TestClient
) -> None:
    # Staff hold user/ scopes only (tests/oauth/test_staff.py); the diary has none.
    doctor = accounts.create_account(engine, "doctor@example.ru", PASSWORD, "practitioner")
    browser = sign_in(app, engine, doctor)
    with browser.http:
        path, params = authorize_url(diary.client_id, pkce=new_pkce())
        r = browser.http.get(path, params=params)
    assert r.status_code == 302
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["error"] == ["invalid_scope"]
    assert "code" not in query
    assert refused(engine, "oauth-authorize")


def test_unsupported_response_type_goes_back_with_an_error(
    anna: Browser, diary: OAuthClient
) -> None:
    path, params = authorize_url(diary.client_id, pkce=new_pkce())
    r = anna.http.get(path, params={**params, "response_type": "token"})
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["unsupported_response_type"]


def test_wrong_audience_is_refused(anna: Browser, diary: OAuthClient) -> None:
    path, params = authorize_url(diary.client_id, pkce=new_pkce(), aud="https://evil.example/fhir")
    r = anna.http.get(path, params=params)
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_request"]


def test_tampered_or_forged_tokens_are_refused_at_fhir(
    full_grant: dict[str, Any], api: TestClient, patients: dict[str, str]
) -> None:
    import base64
    import json

    header, payload, sig = full_grant["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["patient"] = patients["boris"]
    claims["scope"] = "system/*.*"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for token in (
        f"{header}.{forged}.{sig}",
        f"{header}.{payload}.{sig[:-6]}AAAAAA",
        f"{header}.{forged}.",
    ):
        r = api.get(f"/fhir/Observation?patient={patients['boris']}", headers=bearer(token))
        assert r.status_code == 401, r.text
        assert "www-authenticate" in r.headers


def test_deactivated_patient_account_stops_refreshing(
    full_grant: dict[str, Any], anna: Browser, diary: OAuthClient, api: TestClient, engine: Engine
) -> None:
    accounts.deactivate(engine, anna.account.id)
    r = api.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": full_grant["refresh_token"],
            "client_id": diary.client_id,
        },
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_revoked_client_loses_its_tokens(
    full_grant: dict[str, Any], diary: OAuthClient, api: TestClient, engine: Engine,
    patients: dict[str, str], anna: Browser,
) -> None:  # fmt: skip
    from medcard.auth.oauth import revocation
    from medcard.auth.oauth.clients import revoke_client

    assert revoke_client(engine, diary.client_id)
    revocation.forget([revocation.jti_of(full_grant["access_token"])])
    search = f"/fhir/Observation?patient={patients['anna']}"
    assert api.get(search, headers=bearer(full_grant["access_token"])).status_code == 401
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": full_grant["refresh_token"],
        "client_id": diary.client_id,
    }
    assert api.post("/oauth/token", data=refresh).json()["error"] == "invalid_client"
    path, params = authorize_url(diary.client_id, pkce=new_pkce())
    assert anna.http.get(path, params=params).status_code == 400


def test_consent_answer_for_a_changed_request_is_revalidated(
    anna: Browser, diary: OAuthClient
) -> None:
    """The POST carries the request in its URL and is checked again, not trusted."""
    pkce = new_pkce()
    r = consent(anna, diary.client_id, pkce=pkce)
    assert r.status_code == 303
    path, params = authorize_url(diary.client_id, pkce=pkce, redirect_uri="https://evil.example/cb")
    post = anna.http.post(path, params=params, data={"csrf_token": anna.csrf, "decision": "allow"})
    assert post.status_code == 400
