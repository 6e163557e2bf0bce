"""The patient picker (issue 22, item 4): a parent authorizing an app chooses ONE card; the
token's ``patient`` is that card, it carries no ``patients`` list, and the access gate
keeps the app to that one compartment."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.oauth.clients import OAuthClient
from medcard.auth.oauth.revocation import unverified_claims
from medcard.identifiers import SNILS_SYSTEM
from tests import factories
from tests.oauth.conftest import (
    PASSWORD,
    Authorized,
    Browser,
    audit_rows,
    authorize_url,
    bearer,
    exchange,
    new_pkce,
    sign_in,
)

V3 = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
SCOPE = "launch/patient offline_access patient/Observation.rs patient/Patient.rs"


def _post(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@dataclass
class Family:
    parent: str
    child: str
    stranger: str
    browser: Browser


@pytest.fixture
def family(client: TestClient, app: Any, engine: Engine) -> Iterator[Family]:
    """A mother with a son under 15 (a RelatedPerson naming her SNILS), each with a reading,
    and a child of someone else; the mother is signed in."""
    mother = factories.patient(family="Кузнецова", given="Мария", birthDate="1985-04-02")
    parent = _post(client, mother)
    child = _post(
        client, factories.patient(family="Кузнецов", given="Илья", birthDate="2018-09-01")
    )
    stranger = _post(
        client, factories.patient(family="Чужой", given="Пётр", birthDate="2019-01-01")
    )
    _post(
        client,
        {
            "resourceType": "RelatedPerson",
            "active": True,
            "patient": {"reference": f"Patient/{child}"},
            "identifier": [{"system": SNILS_SYSTEM, "value": mother["identifier"][0]["value"]}],
            "relationship": [{"coding": [{"system": V3, "code": "MTH"}]}],
            "name": [{"family": "Кузнецова", "given": ["Мария"]}],
        },
    )
    for pid in (parent, child, stranger):
        _post(client, factories.observation(pid))
    account = accounts.create_account(
        engine,
        "maria@example.ru",
        PASSWORD,
        "patient",
        display_name="Мария Кузнецова",
        fhir_ref=f"Patient/{parent}",
    )
    browser = sign_in(app, engine, account)
    with browser.http:
        yield Family(parent, child, stranger, browser)


def _pick(browser: Browser, client_id: str, patient: str) -> Any:
    pkce = new_pkce()
    path, params = authorize_url(client_id, scope=SCOPE, pkce=pkce)
    page = browser.http.get(path, params=params)
    assert page.status_code == 200, page.text
    answer = browser.http.post(
        path,
        params=params,
        data={"csrf_token": browser.csrf, "decision": "allow", "patient": patient},
    )
    return answer, pkce


def _token(browser: Browser, api: TestClient, client_id: str, patient: str) -> dict[str, Any]:
    answer, pkce = _pick(browser, client_id, patient)
    assert answer.status_code == 303, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    auth = Authorized(query["code"][0], query["state"][0], pkce, answer.headers["location"])
    r = exchange(api, client_id, auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _subjects(api: TestClient, token: str) -> set[str]:
    r = api.get("/fhir/Observation", headers=bearer(token))
    assert r.status_code == 200, r.text
    return {e["resource"]["subject"]["reference"] for e in r.json().get("entry", [])}


def test_the_consent_page_offers_the_parents_cards(family: Family, diary: OAuthClient) -> None:
    path, params = authorize_url(diary.client_id, scope=SCOPE, pkce=new_pkce())
    page = family.browser.http.get(path, params=params).text
    assert "Чью карту открыть приложению" in page
    assert f'name="patient" value="{family.parent}" checked' in page
    assert f'name="patient" value="{family.child}"' in page
    assert "Кузнецов Илья" in page or "Илья Кузнецов" in page
    assert family.stranger not in page


def test_a_parent_picks_the_child(family: Family, diary: OAuthClient, api: TestClient) -> None:
    body = _token(family.browser, api, diary.client_id, family.child)
    assert body["patient"] == family.child
    claims = unverified_claims(body["access_token"])
    assert claims["patient"] == family.child
    assert "patients" not in claims
    assert claims["sub"] == f"Patient/{family.parent}"  # the parent still acts
    access = body["access_token"]
    assert _subjects(api, access) == {f"Patient/{family.child}"}
    assert api.get(f"/fhir/Patient/{family.child}", headers=bearer(access)).status_code == 200
    for other in (family.parent, family.stranger):
        r = api.get(f"/fhir/Patient/{other}", headers=bearer(access))
        assert r.status_code in (403, 404), r.text
    # A refreshed token stays on the picked card.
    r = api.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": diary.client_id,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["patient"] == family.child
    assert _subjects(api, r.json()["access_token"]) == {f"Patient/{family.child}"}


def test_a_parent_picks_their_own_card(family: Family, diary: OAuthClient, api: TestClient) -> None:
    body = _token(family.browser, api, diary.client_id, family.parent)
    assert body["patient"] == family.parent
    assert "patients" not in unverified_claims(body["access_token"])
    access = body["access_token"]
    assert _subjects(api, access) == {f"Patient/{family.parent}"}
    r = api.get(f"/fhir/Patient/{family.child}", headers=bearer(access))
    assert r.status_code in (403, 404), r.text


def test_a_card_the_parent_may_not_open_is_refused(
    family: Family, diary: OAuthClient, engine: Engine
) -> None:
    answer, _ = _pick(family.browser, diary.client_id, family.stranger)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "Запрос приложения отклонён" in answer.text
    refused = [r for r in audit_rows(engine) if r.interaction == "oauth-authorize"]
    assert any(family.stranger in (r.detail or "") and r.outcome != "0" for r in refused)
