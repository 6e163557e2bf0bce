"""«Войти через Госуслуги»: the whole round trip against a real OpenID Connect provider."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import Engine, select

from medcard.access.context import AccessContext
from medcard.auth import accounts
from medcard.db.tables import accounts as accounts_table
from medcard.db.tables import audit_log, sessions
from medcard.fhir import local
from tests.sso.conftest import (
    CLIENT_ID,
    DUPLICATE_SNILS,
    MATCHED_SNILS,
    PUBLIC_CLIENT_ID,
    PUBLIC_REGION,
    UNKNOWN_SNILS,
    USERINFO_SNILS,
    at_provider,
    create_patient,
    sign_in,
    start_login,
)

pytestmark = pytest.mark.live


def _rows(engine: Engine, table: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table)))


def _sso_audit(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_log)
                .where(audit_log.c.interaction == "sso-login")
                .order_by(audit_log.c.id)
            )
        )


def _result_page(
    browser: httpx.Client, app: str, resp: httpx.Response, **params: str
) -> httpx.Response:
    assert resp.status_code == 303, resp.text
    location = resp.headers["location"]
    assert location.startswith("/auth/sso/"), location
    assert location.endswith("/result"), location
    return browser.get(app + location + (f"?{urlencode(params)}" if params else ""))


def test_matched_person_is_signed_in_as_their_patient_and_asked_for_consent(
    browser: httpx.Client, sso_server: str, oidc_issuer: str, engine: Engine
) -> None:
    patient_id = create_patient(engine, MATCHED_SNILS)

    resp = sign_in(browser, sso_server, "ivanova")

    assert resp.status_code == 303
    assert resp.headers["location"] == "/access/consent"  # no consent yet: asked first
    me = browser.get(sso_server + "/me")
    assert me.status_code == 200, me.text
    assert f"Patient/{patient_id}" in me.text
    assert "Иванова Мария Петровна" in me.text
    (row,) = _rows(engine, accounts_table)
    assert (row.login, row.role, row.fhir_ref, row.region) == (
        "sso:77:ivanova",
        "patient",
        f"Patient/{patient_id}",
        "77",
    )
    (session,) = _rows(engine, sessions)
    assert session.account_id == row.id
    assert session.mfa_ok  # the provider's authentication stands for the second factor
    # Only the provider opens this account: no password works for it.
    assert not accounts.authenticate(engine, "sso:77:ivanova", "").ok
    assert not accounts.authenticate(engine, "sso:77:ivanova", "!sso").ok


def test_second_sign_in_reuses_the_account_and_ends_the_old_session(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    create_patient(engine, MATCHED_SNILS)
    assert sign_in(browser, sso_server, "ivanova").headers["location"] == "/access/consent"
    first = browser.cookies.get("medcard_session")

    assert sign_in(browser, sso_server, "ivanova").headers["location"] == "/access/consent"

    assert len(_rows(engine, accounts_table)) == 1
    assert len(_rows(engine, sessions)) == 1
    assert browser.cookies.get("medcard_session") != first


def test_unknown_snils_gets_a_clear_page_and_no_account(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    create_patient(engine, MATCHED_SNILS)  # somebody else's card

    resp = sign_in(browser, sso_server, "petrov")

    page = _result_page(browser, sso_server, resp)
    assert page.status_code == 200
    assert 'data-sso-result="no_card"' in page.text
    assert "Медицинская карта не найдена" in page.text
    assert "регистратуру поликлиники, к которой вы прикреплены" in page.text
    assert UNKNOWN_SNILS[-5:-2] + " " + UNKNOWN_SNILS[-2:] in page.text  # masked: ***-***-556 ..
    assert UNKNOWN_SNILS[:3] not in page.text.split("СНИЛС")[1][:20]
    assert "Traceback" not in page.text
    assert _rows(engine, accounts_table) == []
    assert _rows(engine, sessions) == []
    assert browser.cookies.get("medcard_session") is None
    # The same page in English, and reloading it does not repeat the callback.
    english = browser.get(sso_server + "/auth/sso/77/result?lang=en")
    assert english.status_code == 200
    assert "Medical card not found" in english.text
    assert "registry of the polyclinic you are attached to" in english.text


def test_duplicate_cards_get_the_merge_page_until_the_registry_merges_them(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    keep = create_patient(engine, DUPLICATE_SNILS, "Сидоров")
    twin = create_patient(engine, DUPLICATE_SNILS, "Сидоров")

    page = _result_page(browser, sso_server, sign_in(browser, sso_server, "sidorov"))

    assert page.status_code == 409
    assert 'data-sso-result="duplicate_cards"' in page.text
    assert "объединить" in page.text
    assert _rows(engine, accounts_table) == []

    # The registry merges: the twin now points at the survivor (FHIR Patient.link).
    system = AccessContext.system("system:test")
    twin_body = json.loads(local.call(engine, system, "GET", f"Patient/{twin}").body_bytes())
    twin_body["active"] = False
    twin_body["link"] = [{"other": {"reference": f"Patient/{keep}"}, "type": "replaced-by"}]
    assert local.call(engine, system, "PUT", f"Patient/{twin}", twin_body).status == 200

    resp = sign_in(browser, sso_server, "sidorov")
    assert resp.headers["location"] == "/access/consent"
    (row,) = _rows(engine, accounts_table)
    assert row.fhir_ref == f"Patient/{keep}"


def test_tampered_state_is_refused(browser: httpx.Client, sso_server: str, engine: Engine) -> None:
    create_patient(engine, MATCHED_SNILS)
    started = start_login(browser, sso_server)
    callback = at_provider(browser, started.authorize_url, sso_server, "ivanova")
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["state"] = query["state"][:-2] + ("AA" if not query["state"].endswith("AA") else "BB")

    resp = browser.get(urlunsplit(parts._replace(query=urlencode(query))))

    page = _result_page(browser, sso_server, resp)
    assert page.status_code == 400
    assert 'data-sso-result="bad_state"' in page.text
    assert _rows(engine, accounts_table) == []
    assert _rows(engine, sessions) == []


def test_forged_state_cookie_is_refused(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    create_patient(engine, MATCHED_SNILS)
    started = start_login(browser, sso_server)
    callback = at_provider(browser, started.authorize_url, sso_server, "ivanova")
    payload, _, signature = started.login_cookie.partition(".")
    forged = payload + "." + signature[::-1]
    browser.cookies.set("medcard_sso", forged, domain="127.0.0.1", path="/auth/sso/")

    page = _result_page(browser, sso_server, browser.get(callback))

    assert 'data-sso-result="bad_state"' in page.text
    assert _rows(engine, sessions) == []


def test_replayed_callback_is_refused(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    create_patient(engine, MATCHED_SNILS)
    started = start_login(browser, sso_server)
    callback = at_provider(browser, started.authorize_url, sso_server, "ivanova")
    assert browser.get(callback).headers["location"] == "/access/consent"
    assert len(_rows(engine, sessions)) == 1

    # Replayed as is: the state cookie was cleared by the first use.
    page = _result_page(browser, sso_server, browser.get(callback))
    assert 'data-sso-result="bad_state"' in page.text
    # Replayed by someone who kept the state cookie too: the state is single-use.
    browser.cookies.set("medcard_sso", started.login_cookie, domain="127.0.0.1", path="/auth/sso/")
    page = _result_page(browser, sso_server, browser.get(callback))
    assert page.status_code == 400
    assert 'data-sso-result="replayed"' in page.text
    assert len(_rows(engine, sessions)) == 1


def test_authorization_request_uses_pkce_s256_state_and_nonce(
    browser: httpx.Client, sso_server: str, oidc_issuer: str
) -> None:
    started = start_login(browser, sso_server)

    url = urlsplit(started.authorize_url)
    assert f"{url.scheme}://{url.netloc}" == oidc_issuer
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["code_challenge_method"] == "S256"
    challenge = query["code_challenge"]
    assert len(challenge) == 43  # base64url of a SHA-256 digest, unpadded
    assert len(base64.urlsafe_b64decode(challenge + "=")) == 32
    assert len(query["state"]) >= 32
    assert len(query["nonce"]) >= 32
    assert set(query["scope"].split()) == {"openid", "profile", "snils"}
    assert query["redirect_uri"] == f"{sso_server}/auth/sso/77/callback"
    # A second login gets fresh values.
    again = parse_qs(urlsplit(start_login(browser, sso_server).authorize_url).query)
    assert again["code_challenge"][0] != challenge
    assert again["state"][0] != query["state"]


def test_public_client_and_snils_from_userinfo(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    patient_id = create_patient(engine, USERINFO_SNILS, "Кузнецова")

    started = start_login(browser, sso_server, PUBLIC_REGION)
    assert parse_qs(urlsplit(started.authorize_url).query)["client_id"] == [PUBLIC_CLIENT_ID]
    resp = browser.get(at_provider(browser, started.authorize_url, sso_server, "kuznetsova"))

    assert resp.headers["location"] == "/access/consent"
    (row,) = _rows(engine, accounts_table)
    assert (row.login, row.fhir_ref) == ("sso:50:kuznetsova", f"Patient/{patient_id}")


def test_cancelling_at_the_provider_gives_a_readable_page(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    started = start_login(browser, sso_server)
    callback = at_provider(browser, started.authorize_url, sso_server, "ivanova", cancel=True)
    assert "error=access_denied" in callback

    page = _result_page(browser, sso_server, browser.get(callback), lang="en")

    assert page.status_code == 403
    assert "Sign-in cancelled" in page.text
    assert _rows(engine, accounts_table) == []


def test_person_without_snils_is_told_why(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    page = _result_page(browser, sso_server, sign_in(browser, sso_server, "nosnils"))

    assert page.status_code == 422
    assert "Портал не передал СНИЛС" in page.text
    assert _rows(engine, accounts_table) == []


def test_unknown_region_and_a_result_page_without_a_login(
    browser: httpx.Client, sso_server: str
) -> None:
    assert browser.get(sso_server + "/auth/sso/99/login").status_code == 404
    assert browser.get(sso_server + "/auth/sso/99/callback?code=x&state=y").status_code == 404
    page = browser.get(sso_server + "/auth/sso/77/result")
    assert page.status_code == 400
    assert 'data-sso-result="bad_state"' in page.text
    choose = browser.get(sso_server + "/auth/sso")
    assert choose.status_code == 200
    assert "Войти через Госуслуги" in choose.text
    assert 'href="/auth/sso/77/login"' in choose.text


def test_audit_log_records_each_sso_sign_in_attempt(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    patient_id = create_patient(engine, MATCHED_SNILS)
    sign_in(browser, sso_server, "ivanova")
    sign_in(browser, sso_server, "petrov")
    started = start_login(browser, sso_server)
    callback = at_provider(browser, started.authorize_url, sso_server, "ivanova")
    browser.get(callback.replace("state=", "state=x"))

    success, no_card, bad_state = _sso_audit(engine)

    (account,) = _rows(engine, accounts_table)
    assert (success.outcome, success.actor, success.patient_id, success.resource_type) == (
        "0",
        f"Account/{account.id}",
        patient_id,
        "Patient",
    )
    assert success.client_id == "sso:77"
    assert "sso:77:ivanova" in success.detail
    assert (no_card.outcome, no_card.actor) == ("8", "sso:77:petrov")
    assert no_card.detail.startswith("no_card")
    assert UNKNOWN_SNILS not in no_card.detail  # masked
    assert (bad_state.outcome, bad_state.actor) == ("4", "anonymous")
    assert bad_state.detail.startswith("bad_state")


@pytest.mark.parametrize("iss", ["https://another-provider.example", None])
def test_response_not_naming_our_provider_is_refused(
    browser: httpx.Client, sso_server: str, engine: Engine, iss: str | None
) -> None:
    """RFC 9207: the provider always names itself in its response (it says so in its
    discovery document); a response naming another issuer, or none, is a mix-up."""
    create_patient(engine, MATCHED_SNILS)
    started = start_login(browser, sso_server)
    callback = at_provider(browser, started.authorize_url, sso_server, "ivanova")
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert "iss" in query
    if iss is None:
        del query["iss"]
    else:
        query["iss"] = iss

    resp = browser.get(urlunsplit(parts._replace(query=urlencode(query))))

    page = _result_page(browser, sso_server, resp)
    assert page.status_code == 502
    assert 'data-sso-result="provider_error"' in page.text
    assert _rows(engine, sessions) == []


def test_region_with_sso_turned_off_refuses_to_start_a_login(
    browser: httpx.Client, sso_server: str, engine: Engine
) -> None:
    from medcard.regions.config import RegionSettings, make_config, save_region
    from medcard.regions.features import ALL_FEATURES, Feature
    from tests.sso.conftest import PUBLIC_REGION

    save_region(
        engine,
        make_config(
            PUBLIC_REGION,
            "Московская область",
            "Europe/Moscow",
            RegionSettings(features=ALL_FEATURES - {Feature.SSO}),
        ),
        "system:test",
    )
    resp = browser.get(f"{sso_server}/auth/sso/{PUBLIC_REGION}/login")
    assert resp.status_code == 403
    assert "Московская область" in resp.text
    assert "location" not in resp.headers  # never sent to the provider
