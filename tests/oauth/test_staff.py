"""Staff over the API (issue 3): a signed-in member of staff authorizes an app, the app
gets user/ scopes within the role's ceiling, and the token carries the role and
organisations the access gate decides by."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from medcard.access import policy
from medcard.access.context import AccessContext
from medcard.access.roles import DEMOGRAPHIC_TYPES, Role
from medcard.access.smart import PERMISSIONS, Scopes
from medcard.auth import accounts
from medcard.auth.oauth import scopes as sc
from medcard.auth.oauth.clients import ClientError, OAuthClient, create_client
from medcard.auth.oauth.revocation import unverified_claims
from medcard.auth.oauth.server import HttpRequest, HttpResponse, MedcardAuthorizationServer
from medcard.auth.oauth.store import ResourceOwner
from medcard.auth.sessions import COOKIE_NAME, create_session
from medcard.auth.tokens import TokenIssuer
from medcard.db.tables import oauth_codes
from medcard.fhir import spec
from medcard.fhir.outcomes import FhirError
from tests import factories
from tests.oauth.conftest import (
    DIARY_REDIRECT,
    FHIR,
    PASSWORD,
    Browser,
    Pkce,
    audit_rows,
    authorize,
    authorize_url,
    bearer,
    exchange,
    new_pkce,
)

EHR_REDIRECT = "https://ehr.example/callback"
EHR_SCOPE = "openid fhirUser launch/patient offline_access user/*.cruds patient/*.rs"
STAFF = ("practitioner", "registrar", "org_admin", "reviewer", "region_admin")


def _post(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def world(client: TestClient) -> dict[str, str]:
    """Clinic A; practitioner P1 working there (PractitionerRole); patient X attached to A,
    patient Y attached nowhere near; an Observation in each card."""
    w = {"A": _post(client, factories.organization("Поликлиника А"))}
    w["P1"] = _post(client, {"resourceType": "Practitioner", "name": [{"family": "Петров"}]})
    _post(
        client,
        {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": {"reference": f"Practitioner/{w['P1']}"},
            "organization": {"reference": f"Organization/{w['A']}"},
        },
    )
    w["X"] = _post(
        client, factories.patient(managingOrganization={"reference": f"Organization/{w['A']}"})
    )
    w["Y"] = _post(client, factories.patient(family="Сидорова", given="Анна", gender="female"))
    w["obs_X"] = _post(client, factories.observation(w["X"]))
    w["obs_Y"] = _post(client, factories.observation(w["Y"]))
    return w


@dataclass
class App:
    client: OAuthClient
    secret: str | None


@pytest.fixture
def ehr(engine: Engine) -> App:
    """A confidential app (a clinician's workstation), registered for both kinds of scope."""
    client, secret = create_client(
        engine, "АРМ врача", public=False, redirect_uris=[EHR_REDIRECT], scope=EHR_SCOPE
    )
    return App(client, secret)


@pytest.fixture
def desk(engine: Engine) -> App:
    """A public app (PKCE alone) for the front desk."""
    client, secret = create_client(
        engine,
        "Регистратура онлайн",
        public=True,
        redirect_uris=[DIARY_REDIRECT],
        scope="openid fhirUser user/*.cruds",
    )
    return App(client, secret)


@pytest.fixture
def staff_browser(app: Any, engine: Engine) -> Iterator[Any]:
    made: list[Browser] = []

    def open_for(role: str, *, mfa_ok: bool = True, **kw: Any) -> Browser:
        """A signed-in browser; ``mfa_ok=False``: the password only, no one-time code yet."""
        account = accounts.create_account(
            engine, f"{role}{len(made)}@example.ru", PASSWORD, role, display_name="Сотрудник", **kw
        )
        cookie, csrf = create_session(engine, account.id, mfa_ok=mfa_ok)
        http = TestClient(app, base_url="http://testserver", follow_redirects=False)
        http.cookies.set(COOKIE_NAME, cookie)
        browser = Browser(http, csrf, account)
        made.append(browser)
        return browser

    yield open_for
    for b in made:
        b.http.close()


def _token(api: TestClient, app_: App, browser: Browser, scope: str, redirect: str) -> Any:
    pkce = new_pkce()
    auth = authorize(browser, app_.client.client_id, scope=scope, pkce=pkce, redirect_uri=redirect)
    data = {
        "grant_type": "authorization_code",
        "code": auth.code,
        "redirect_uri": redirect,
        "code_verifier": auth.pkce.verifier,
    }
    if app_.secret is None:
        return api.post("/oauth/token", data={**data, "client_id": app_.client.client_id})
    return api.post("/oauth/token", data=data, auth=(app_.client.client_id, app_.secret))


def test_practitioner_app_reads_attached_patients_and_nobody_else(
    api: TestClient, ehr: App, staff_browser: Any, world: dict[str, str], engine: Engine
) -> None:
    doctor = staff_browser("practitioner", fhir_ref=f"Practitioner/{world['P1']}")
    r = _token(api, ehr, doctor, EHR_SCOPE, EHR_REDIRECT)
    assert r.status_code == 200, r.text
    body = r.json()
    # user/ only; no launch context, no patient/ scopes, no refresh token for staff.
    assert body["scope"] == "user/*.cruds openid fhirUser"
    assert "patient" not in body
    assert "refresh_token" not in body
    claims = unverified_claims(body["access_token"])
    assert claims["role"] == "practitioner"
    assert claims["orgs"] == [world["A"]]  # from the active PractitionerRole
    assert claims["sub"] == claims["fhirUser"] == f"Practitioner/{world['P1']}"
    assert "patient" not in claims
    id_token = unverified_claims(body["id_token"])
    assert id_token["fhirUser"] == f"http://testserver/fhir/Practitioner/{world['P1']}"

    headers = bearer(body["access_token"])
    assert api.get(f"/fhir/Observation/{world['obs_X']}", headers=headers).status_code == 200
    assert api.get(f"/fhir/Observation/{world['obs_Y']}", headers=headers).status_code == 404
    found = api.get("/fhir/Observation", headers=headers).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [world["obs_X"]]
    org = api.post(
        "/fhir/Organization",
        json=factories.organization("Новая клиника"),
        headers={**headers, "Content-Type": FHIR},
    )
    assert org.status_code == 403, org.text

    allowed = [row for row in audit_rows(engine, "oauth-authorize") if row.outcome == "0"]
    assert len(allowed) == 1
    assert allowed[0].actor == f"Practitioner/{world['P1']}"
    assert allowed[0].detail.startswith("practitioner allowed 'АРМ врача': user/*.cruds")
    assert "not granted: launch/patient offline_access patient/*.rs" in allowed[0].detail
    issued = [row for row in audit_rows(engine, "oauth-token") if row.outcome == "0"]
    assert [row.detail for row in issued] == [
        "authorization_code: issued user/*.cruds openid fhirUser"
    ]


def test_registrar_token_reads_and_updates_patients_but_no_clinical_content(
    api: TestClient, desk: App, staff_browser: Any, world: dict[str, str]
) -> None:
    registrar = staff_browser("registrar", organization_ref=f"Organization/{world['A']}")
    r = _token(api, desk, registrar, "openid user/*.cruds user/Observation.rs", DIARY_REDIRECT)
    assert r.status_code == 200, r.text
    body = r.json()
    granted = sc.parse(body["scope"])
    assert {s.resource_type for s in granted.scopes} <= DEMOGRAPHIC_TYPES
    assert "user/Patient.cruds" in body["scope"].split()
    assert "Observation" not in body["scope"]
    claims = unverified_claims(body["access_token"])
    assert claims["role"] == "registrar"
    assert claims["orgs"] == [world["A"]]
    assert "fhirUser" not in claims  # a registrar's account names no FHIR resource

    headers = bearer(body["access_token"])
    read = api.get(f"/fhir/Patient/{world['X']}", headers=headers)
    assert read.status_code == 200, read.text
    changed = {**read.json(), "birthDate": "1980-05-18"}
    put = api.put(
        f"/fhir/Patient/{world['X']}", json=changed, headers={**headers, "Content-Type": FHIR}
    )
    assert put.status_code == 200, put.text
    assert api.get(f"/fhir/Observation/{world['obs_X']}", headers=headers).status_code == 403
    assert api.get("/fhir/Observation", headers=headers).status_code == 403


@pytest.mark.parametrize("role", STAFF)
def test_each_staff_role_gets_its_ceiling_and_its_role_claim(
    role: str, api: TestClient, ehr: App, staff_browser: Any, world: dict[str, str]
) -> None:
    browser = staff_browser(role, organization_ref=f"Organization/{world['A']}")
    r = _token(api, ehr, browser, "user/*.cruds", EHR_REDIRECT)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == str(sc.ceiling(Role(role)))
    claims = unverified_claims(r.json()["access_token"])
    assert claims["role"] == role
    assert claims["orgs"] == [world["A"]]


def test_consent_screen_names_the_role_and_what_is_not_granted(
    ehr: App, staff_browser: Any
) -> None:
    doctor = staff_browser("practitioner")
    path, params = authorize_url(
        ehr.client.client_id, scope=EHR_SCOPE, pkce=new_pkce(), redirect_uri=EHR_REDIRECT
    )
    ru = doctor.http.get(path, params=params)
    assert ru.status_code == 200, ru.text
    assert "«АРМ врача» просит доступ к medcard от вашего имени" in ru.text
    assert "Вы вошли как Сотрудник, роль: Врач" in ru.text
    assert "не больше, чем позволяет роль «Врач»" in ru.text
    assert "медицинские карты пациентов, доступные вам по вашей роли" in ru.text
    assert "попадёт в журнал доступа от вашего имени" in ru.text
    # named as not granted:
    assert "launch/patient" in ru.text
    assert "patient/*.rs" in ru.text
    en = doctor.http.get(path, params={**params, "lang": "en"})
    assert "Signed in as Сотрудник, role: Practitioner" in en.text

    registrar = staff_browser("registrar")
    page = registrar.http.get(path, params=params)
    assert "роль: Регистратор" in page.text
    assert "изменять и удалять сведения о пациентах (Patient)" in page.text
    assert "(Observation)" not in page.text


def test_staff_need_the_second_factor_before_authorizing(
    ehr: App, staff_browser: Any, engine: Engine
) -> None:
    doctor = staff_browser("practitioner", mfa_ok=False)
    path, params = authorize_url(
        ehr.client.client_id, scope=EHR_SCOPE, pkce=new_pkce(), redirect_uri=EHR_REDIRECT
    )
    shown = doctor.http.get(path, params=params)
    assert shown.status_code == 303
    assert shown.headers["location"].startswith("/login/mfa")
    posted = doctor.http.post(
        path, params=params, data={"csrf_token": doctor.csrf, "decision": "allow"}
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/login/mfa")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(oauth_codes)).scalar_one() == 0


def test_authorization_server_itself_refuses_staff_without_the_second_factor(
    engine: Engine, issuer: TokenIssuer, ehr: App
) -> None:
    server = MedcardAuthorizationServer(engine, issuer)
    pkce: Pkce = new_pkce()
    _, params = authorize_url(
        ehr.client.client_id, scope=EHR_SCOPE, pkce=pkce, redirect_uri=EHR_REDIRECT
    )
    req = HttpRequest("GET", "http://testserver/oauth/authorize", {}, list(params.items()))
    owner = ResourceOwner("acc-1", "practitioner", "Practitioner/p1", mfa_ok=False)
    result = server.begin_authorization(req, owner)
    assert isinstance(result, HttpResponse)
    query = parse_qs(urlsplit(result.location or "").query)
    assert query["error"] == ["access_denied"]
    assert "one-time code" in query["error_description"][0]
    refused = [row for row in audit_rows(engine, "oauth-authorize") if row.outcome == "4"]
    assert refused
    assert refused[-1].actor == "Practitioner/p1"


def test_patient_asking_for_user_scopes_gets_them_narrowed_away(
    anna: Browser, api: TestClient, engine: Engine, patients: dict[str, str]
) -> None:
    both, _ = create_client(
        engine,
        "Приложение для всех",
        public=True,
        redirect_uris=[DIARY_REDIRECT],
        scope="launch/patient user/*.rs patient/Observation.rs",
    )
    path, params = authorize_url(
        both.client_id, scope="user/*.rs patient/Observation.rs", pkce=new_pkce()
    )
    page = anna.http.get(path, params=params)
    assert page.status_code == 200
    assert "user/*.rs" in page.text  # named as something it will not get
    auth = authorize(anna, both.client_id, scope="user/*.rs patient/Observation.rs")
    body = exchange(api, both.client_id, auth).json()
    assert body["scope"] == "patient/Observation.rs"
    assert unverified_claims(body["access_token"])["role"] == "patient"

    _, only_user = authorize_url(both.client_id, scope="user/*.rs", pkce=new_pkce())
    r = anna.http.get(path, params=only_user)
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_scope"]


def test_apps_may_be_registered_for_user_scopes_but_not_system_ones(engine: Engine) -> None:
    """Apps may hold patient/ and user/ scopes; system/ stays with client credentials."""
    client, _ = create_client(
        engine, "Для сотрудников", public=True, redirect_uris=[DIARY_REDIRECT], scope="user/*.rs"
    )
    assert client.scope == "user/*.rs"
    with pytest.raises(ClientError, match="system"):
        create_client(
            engine, "Нельзя", public=True, redirect_uris=[DIARY_REDIRECT], scope="system/*.rs"
        )


@pytest.mark.parametrize("role", [Role(r) for r in STAFF])
def test_role_ceilings_agree_with_the_access_gate(role: Role) -> None:
    """Every (type, letter) a role's ceiling grants is one the gate allows, and the other
    way round: the token never promises what the gate refuses, nor hides what it allows.
    The one exception: a practitioner's user/*.cruds also spans writes to reference
    data (Organization, Practitioner, ...), which the gate refuses."""
    ceiling = sc.ceiling(role)
    ctx = AccessContext(
        "Practitioner/p1" if role is Role.PRACTITIONER else "Account/a1",
        Scopes.parse("user/*.cruds"),
        role=role,
        organizations=frozenset({"A"}),
    )
    mismatches = []
    for rtype in sorted(spec.resource_types()):
        for letter in PERMISSIONS:
            try:
                policy.restriction(ctx, rtype, letter)
                gate = True
            except FhirError:
                gate = False
            promised = bool(ceiling.levels_granting(rtype, letter))
            if promised == gate:
                continue
            if (
                role is Role.PRACTITIONER
                and letter in "cud"
                and not policy.in_patient_compartment(rtype)
            ):
                continue
            mismatches.append((rtype, letter, promised, gate))
    assert mismatches == []
