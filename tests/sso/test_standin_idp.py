"""The demo's stand-in national identity provider (auth/standin_idp.py), over real HTTP.

The app runs on a real uvicorn server with MEDCARD_STANDIN_IDP on, as ``serve --demo``
runs it, on the demo data; medcard's SSO client reaches the stand-in through its
discovery document like any provider.  The tests walk the flow hop by hop, as a
browser would, and look at what the provider hands out (ID token signature, PKCE).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from rich.console import Console
from sqlalchemy import Engine, func, select

from medcard.auth import accounts, standin_idp
from medcard.config import Settings
from medcard.db.tables import audit_log
from medcard.demo.loader import load_demo
from medcard.demo.regions import seed_demo_regions
from medcard.web.standin_idp import configure

LABEL = "Тестовый поставщик (заглушка) — не Госуслуги"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_PERSON = re.compile(r'<button type="submit" name="person" value="([^"]+)">([^<]+)</button>')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def demo(engine: Engine) -> None:
    load_demo(engine, 4, console=Console(file=io.StringIO()))


@pytest.fixture
def web() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=20, follow_redirects=False) as client:
        yield client


def _picker(web: httpx.Client, app: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Our login → the stand-in's picker: its URL, hidden fields and persons (name → sub)."""
    start = web.get(f"{app}/auth/sso/77/login")
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(f"{app}/standin-idp/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0]
    page = web.get(authorize)
    assert page.status_code == 200, page.text
    assert LABEL in page.text
    hidden = {k: html.unescape(v) for k, v in _HIDDEN.findall(page.text)}
    persons = {html.unescape(name): sub for sub, name in _PERSON.findall(page.text)}
    return authorize, hidden, persons


def _patient_name(engine: Engine, login: str) -> tuple[str, str]:
    account = accounts.get_by_login(engine, login)
    assert account is not None
    return account.display_name, account.fhir_ref.removeprefix("Patient/")


def test_discovery_and_keys_describe_a_code_pkce_rs256_provider(
    standin_app: str, web: httpx.Client
) -> None:
    issuer = f"{standin_app}/standin-idp"
    doc = web.get(f"{issuer}/.well-known/openid-configuration").json()
    assert doc["issuer"] == issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["response_types_supported"] == ["code"]
    keys = web.get(doc["jwks_uri"]).json()["keys"]
    assert [k["kty"] for k in keys] == ["RSA"]
    assert "d" not in keys[0]
    about = web.get(f"{issuer}/")
    assert about.status_code == 200
    assert LABEL in about.text


def test_matching_person_signs_in_through_the_standin_and_opens_the_card(
    standin_app: str, engine: Engine, demo: None, web: httpx.Client
) -> None:
    name, pid = _patient_name(engine, "patient@medcard.example")
    _, hidden, persons = _picker(web, standin_app)
    assert name in persons, persons
    assert "Новикова Алина Сергеевна" in persons  # a person with no card is offered too

    picked = web.post(
        f"{standin_app}/standin-idp/authorize",
        data={**hidden, "person": persons[name], "password": standin_idp.DEMO_PERSON_PASSWORD},
    )
    assert picked.status_code == 303, picked.text
    callback = picked.headers["location"]
    assert callback.startswith(f"{standin_app}/auth/sso/77/callback?")
    assert parse_qs(urlsplit(callback).query)["state"] == [hidden["state"]]

    signed_in = web.get(callback)
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/access/consent"  # SSO accounts consent first
    consent = web.get(f"{standin_app}/access/consent")
    token = _CSRF.search(consent.text)
    assert token, consent.text[:500]
    given = web.post(
        f"{standin_app}/access/consent", data={"agree": "yes", "csrf_token": token.group(1)}
    )
    assert given.status_code == 303, given.text
    card = web.get(f"{standin_app}/card")
    assert card.status_code == 303
    assert card.headers["location"] == f"/card/{pid}"
    page = web.get(f"{standin_app}/card/{pid}")
    assert page.status_code == 200
    assert name.split()[0] in page.text
    account = accounts.get_by_external_login(engine, f"sso:77:{persons[name]}")
    assert account is not None
    assert account.fhir_ref == f"Patient/{pid}"


def test_newcomer_is_identified_but_has_no_card(
    standin_app: str, demo: None, web: httpx.Client
) -> None:
    _, hidden, persons = _picker(web, standin_app)
    picked = web.post(
        f"{standin_app}/standin-idp/authorize",
        data={**hidden, "person": persons["Фёдоров Константин Ильич"], "password": "medcard-demo"},
    )
    result = web.get(picked.headers["location"])
    assert result.headers["location"] == "/auth/sso/77/result"
    page = web.get(f"{standin_app}/auth/sso/77/result")
    assert "Медицинская карта не найдена" in page.text


def test_wrong_password_and_cancel(standin_app: str, demo: None, web: httpx.Client) -> None:
    _, hidden, persons = _picker(web, standin_app)
    sub = next(iter(persons.values()))
    wrong = web.post(
        f"{standin_app}/standin-idp/authorize",
        data={**hidden, "person": sub, "password": "guess"},
    )
    assert wrong.status_code == 401
    assert "Неверный пароль" in wrong.text
    cancelled = web.post(f"{standin_app}/standin-idp/authorize", data={**hidden, "cancel": "1"})
    assert cancelled.status_code == 303
    assert parse_qs(urlsplit(cancelled.headers["location"]).query)["error"] == ["access_denied"]


def _client_flow(
    app: str, web: httpx.Client, key_path: Path, *, verifier: str, challenge: str
) -> httpx.Response:
    """As a third-party client would: authorize (picking the first person), then the token
    endpoint with the given verifier."""
    issuer = f"{app}/standin-idp"
    redirect_uri = f"{app}/auth/sso/77/callback"
    params = {
        "response_type": "code",
        "client_id": standin_idp.CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": "openid profile snils",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = web.get(f"{issuer}/authorize?{urlencode(params)}")
    assert page.status_code == 200, page.text
    sub = _PERSON.findall(page.text)[0][0]
    picked = web.post(
        f"{issuer}/authorize", data={**params, "person": sub, "password": "medcard-demo"}
    )
    code = parse_qs(urlsplit(picked.headers["location"]).query)["code"][0]
    doc = web.get(f"{issuer}/.well-known/openid-configuration").json()
    secret = standin_idp.client_secret_for(standin_idp.load_or_create_key(key_path))
    return web.post(
        doc["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(standin_idp.CLIENT_ID, secret),
    )


def test_token_endpoint_checks_pkce_and_signs_the_id_token(
    standin_app: str, settings: Settings, demo: None, web: httpx.Client
) -> None:
    key_path = settings.data_dir / "standin-idp-key.json"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    wrong = _client_flow(
        standin_app, web, key_path, verifier=secrets.token_urlsafe(48), challenge=challenge.decode()
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"

    ok = _client_flow(standin_app, web, key_path, verifier=verifier, challenge=challenge.decode())
    assert ok.status_code == 200, ok.text
    raw = ok.json()["id_token"]
    keys = KeySet.import_key_set(web.get(f"{standin_app}/standin-idp/jwks").json())
    token = jwt.decode(raw, keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    claims = token.claims
    assert claims["iss"] == f"{standin_app}/standin-idp"
    assert claims["aud"] == [standin_idp.CLIENT_ID]
    assert re.fullmatch(r"\d{11}", claims["snils"])
    info = web.get(
        f"{standin_app}/standin-idp/userinfo",
        headers={"Authorization": f"Bearer {ok.json()['access_token']}"},
    )
    assert info.status_code == 200
    assert info.json()["sub"] == claims["sub"]


def test_authorization_without_pkce_or_with_a_foreign_redirect_is_refused(
    standin_app: str, web: httpx.Client
) -> None:
    base = {
        "response_type": "code",
        "client_id": standin_idp.CLIENT_ID,
        "redirect_uri": f"{standin_app}/auth/sso/77/callback",
        "scope": "openid snils",
        "state": "s",
        "nonce": "n",
    }
    no_pkce = web.get(f"{standin_app}/standin-idp/authorize?{urlencode(base)}")
    assert no_pkce.status_code == 303
    assert parse_qs(urlsplit(no_pkce.headers["location"]).query)["error"] == ["invalid_request"]
    foreign = {
        **base,
        "redirect_uri": "https://attacker.example/auth/sso/77/callback",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    refused = web.get(f"{standin_app}/standin-idp/authorize?{urlencode(foreign)}")
    assert refused.status_code == 400
    assert LABEL in refused.text


def test_landing_login_and_register_offer_gosuslugi(
    standin_app: str, engine: Engine, web: httpx.Client
) -> None:
    landing = web.get(f"{standin_app}/")
    assert '/auth/sso?lang=ru">Войти через Госуслуги</a>' in landing.text
    assert "следующих версиях" not in landing.text
    for path in ("/login", "/register"):
        assert 'href="/auth/sso/77/login"' in web.get(f"{standin_app}{path}").text, path
    chooser = web.get(f"{standin_app}/auth/sso")
    assert chooser.status_code == 200
    assert "Войти через Госуслуги (77)" in chooser.text  # no regions configured: codes
    seed_demo_regions(engine)
    named = web.get(f"{standin_app}/login").text
    for name in ("г. Москва", "г. Санкт-Петербург", "Свердловская область"):
        assert f"Войти через Госуслуги ({name})" in named


def test_standin_is_off_unless_asked(client: Any) -> None:
    """Without MEDCARD_STANDIN_IDP (every deployment but the demo) nothing of it is served,
    and no national sign-in is offered when none is configured."""
    assert client.get("/standin-idp/.well-known/openid-configuration").status_code == 404
    assert client.get("/standin-idp/authorize").status_code == 404
    assert "/auth/sso" not in client.get("/").text


def test_standin_needs_an_issuer_url_it_can_use(settings: Settings, engine: Engine) -> None:
    """Behind a plain-http, non-loopback base URL (or on an unknown host) the stand-in is
    not started and no provider is configured: the app still starts."""
    for extra in ({"base_url": "http://192.0.2.7:8000"}, {"host": "192.0.2.7"}):
        odd = Settings(data_dir=settings.data_dir, standin_idp=True, **extra)  # type: ignore[arg-type]
        same, provider = configure(odd, engine)
        assert provider is None
        assert same.sso_providers == {}
    ok = Settings(data_dir=settings.data_dir, standin_idp=True, base_url="https://demo.example")
    configured, provider = configure(ok, engine)
    assert provider is not None
    assert provider.issuer == "https://demo.example/standin-idp"
    assert set(configured.sso_providers) == {"77", "78", "66"}
    assert provider.client.check_redirect_uri("https://demo.example/auth/sso/77/callback")
    assert not provider.client.check_redirect_uri("https://other.example/auth/sso/77/callback")
    assert not provider.client.check_redirect_uri("https://demo.example/me")


def test_picker_escapes_what_the_request_carries(standin_app: str, web: httpx.Client) -> None:
    payload = '"><script>window.__xss=1</script>'
    params = {
        "response_type": "code",
        "client_id": standin_idp.CLIENT_ID,
        "redirect_uri": f"{standin_app}/auth/sso/77/callback",
        "scope": "openid snils",
        "state": payload,
        "nonce": payload,
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    page = web.get(f"{standin_app}/standin-idp/authorize?{urlencode(params)}")
    assert page.status_code == 200
    assert "<script>window.__xss" not in page.text
    assert "&#34;&gt;&lt;script&gt;" in page.text or "&quot;&gt;&lt;script&gt;" in page.text
    assert "form-action" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_picker_visits_do_not_flood_the_cards_access_logs(
    standin_app: str, engine: Engine, demo: None, web: httpx.Client
) -> None:
    """The persons are read from the demo cards (audited as system:standin-idp) at most
    every few minutes, not on every visit to the picker."""

    def reads() -> int:
        query = select(func.count()).where(audit_log.c.actor == standin_idp.ACTOR)
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    _picker(web, standin_app)
    first = reads()
    for _ in range(3):
        _picker(web, standin_app)
    assert reads() == first
