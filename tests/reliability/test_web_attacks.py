"""Web attacks on the pages and the API: CSRF on every form, stored and reflected XSS,
session fixation, open redirects, path traversal, oversized and deeply nested JSON.

The route walks use ``web_targets.py``: a new POST route is covered automatically
(or must be listed as exempt, with its reason); a new page that shows written text
is added to ``XSS_PAGES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect

from medcard.auth.accounts import Account, Role
from medcard.auth.sessions import COOKIE_NAME
from medcard.config import Settings
from medcard.web.app import create_app
from tests import factories
from tests.auth.conftest import PASSWORD, csrf_of, login, sign_in
from tests.reliability.web_targets import (
    CSRF_EXEMPT,
    DOWNLOADS,
    XSS_MARKERS,
    XSS_PAGES,
    seed_xss,
    state_changing_routes,
)

FHIR = "application/fhir+json"


# -- CSRF: every state-changing route ------------------------------------------------------


def _routes(app: Any) -> list[tuple[str, str]]:
    return [(m, p) for m, p in state_changing_routes(app) if p not in CSRF_EXEMPT]


def test_the_route_walk_sees_the_forms(app: Any) -> None:
    found = {p for _m, p in _routes(app)}
    assert {"/login", "/logout", "/me/password", "/oauth/authorize"} <= found
    assert all(path in {p for _m, p in state_changing_routes(app)} for path in CSRF_EXEMPT)


def test_every_state_changing_route_refuses_a_request_without_its_csrf_token(
    app: Any, web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    """Signed in (fully, with the second factor), a cross-site form carries the session
    cookie but not the token: every route must refuse it before doing anything."""
    patient = make_account(Role.PATIENT)
    sign_in(web, engine, patient)
    staff = TestClient(app, base_url="http://testserver", follow_redirects=False)
    sign_in(staff, engine, make_account(Role.PRACTITIONER, totp=True))
    failures = []
    walked = 0
    for method, path in _routes(app):
        url = path.replace("{path:path}", "x")
        while "{" in url:
            head, _, rest = url.partition("{")
            url = head + "x" + rest.partition("}")[2]
        for who, c in (("patient", web), ("practitioner", staff)):
            r = c.request(method, url, data={"decision": "allow", "code": "000000"})
            if r.status_code != 403 or "Форма устарела" not in r.text:  # the CSRF page
                failures.append(f"{method} {path} as {who}: {r.status_code} {r.text[:120]}")
            walked += 1
    staff.close()
    assert failures == []
    assert walked >= 2 * 14
    assert web.get("/me").status_code == 200  # nothing signed the person out


def test_a_cross_site_form_cannot_sign_a_victim_into_the_attackers_account(
    web: TestClient, make_account: Callable[..., Account]
) -> None:
    attacker = make_account(Role.PATIENT)
    r = web.post("/login", data={"login": attacker.login, "password": PASSWORD})
    assert r.status_code == 403
    assert COOKIE_NAME not in web.cookies


# -- session fixation ------------------------------------------------------------------------


def test_a_session_id_planted_before_sign_in_is_never_used(
    web: TestClient, new_client: Callable[..., TestClient], make_account: Callable[..., Account]
) -> None:
    planted = "attacker-chosen-session-id-000000000000000000"
    account = make_account(Role.PATIENT)
    page = web.get("/login")
    presession = web.cookies.get("medcard_csrf")
    r = web.post(
        "/login",
        data={"login": account.login, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        headers={"Cookie": f"medcard_csrf={presession}; {COOKIE_NAME}={planted}"},
    )
    assert r.status_code == 303
    issued = r.cookies.get(COOKIE_NAME)
    assert issued
    assert issued != planted
    attacker = new_client()
    r = attacker.get("/me", headers={"Cookie": f"{COOKIE_NAME}={planted}"})
    assert r.status_code == 303  # to the login page


def test_signing_in_again_ends_the_previous_session(
    web: TestClient, new_client: Callable[..., TestClient], make_account: Callable[..., Account]
) -> None:
    first = make_account(Role.PATIENT)
    assert login(web, first.login).status_code == 303
    old = web.cookies.get(COOKIE_NAME)
    assert login(web, make_account(Role.PATIENT).login).status_code == 303
    assert web.cookies.get(COOKIE_NAME) != old
    replay = new_client()
    replay.cookies.set(COOKIE_NAME, str(old))
    assert replay.get("/me").status_code == 303


def test_the_second_factor_rotates_the_session(
    web: TestClient,
    engine: Engine,
    new_client: Callable[..., TestClient],
    make_account: Callable[..., Account],
) -> None:
    doctor = make_account(Role.PRACTITIONER, totp=True)
    assert login(web, doctor.login).status_code == 303
    half = web.cookies.get(COOKIE_NAME)
    sign_in(web, engine, doctor)
    assert web.cookies.get(COOKIE_NAME) != half
    stale = new_client()
    stale.cookies.set(COOKIE_NAME, str(half))
    assert stale.get("/me").status_code == 303


# -- open redirects ----------------------------------------------------------------------------

EVIL_NEXT = ["//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
             "/%2F%2Fevil.example", "http:evil.example", "javascript:alert(1)", "/ok\r\nLocation: https://evil.example",
             "%2F%2Fevil.example", "/\t/evil.example", "////evil.example"]  # fmt: skip


def _is_local(location: str) -> bool:
    parts = urlsplit(location)
    return (
        not parts.scheme
        and not parts.netloc
        and location.startswith("/")
        and not location.startswith("//")
        and "\\" not in location
    )


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_sign_in_never_redirects_off_site(
    web: TestClient, make_account: Callable[..., Account], target: str
) -> None:
    account = make_account(Role.PATIENT)
    page = web.get("/login", params={"next": target})
    assert page.status_code == 200
    r = web.post(
        "/login",
        data={
            "login": account.login,
            "password": PASSWORD,
            "next": target,
            "csrf_token": csrf_of(page.text),
        },
    )
    assert r.status_code == 303
    assert _is_local(r.headers["location"]), r.headers["location"]


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_pages_that_need_sign_in_send_only_local_next_paths(web: TestClient, target: str) -> None:
    r = web.get("/me/password", params={"next": target})
    assert r.status_code in (303, 307)
    assert _is_local(r.headers["location"])


def test_oauth_never_redirects_to_an_unregistered_uri(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    ids = seed_xss(engine)
    sign_in(web, engine, make_account(Role.PATIENT))
    for uri in [
        "https://evil.example/cb",
        "https://app.example.evil.example/cb",
        "https://app.example/cb/../../evil",
        "//evil.example",
    ]:
        r = web.get(
            "/oauth/authorize",
            params={"response_type": "code", "client_id": ids["client_id"], "redirect_uri": uri, "scope": "launch/patient", "state": "s", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"},
        )  # fmt: skip
        assert r.status_code not in (301, 302, 303, 307, 308) or "evil" not in r.headers.get(
            "location", ""
        ), uri


# -- XSS (the browser check is tests/browser/test_reliability_xss.py) -----------------------------


@pytest.fixture
def xss_clients(
    app: Any, web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> dict[str, Any]:
    ids = seed_xss(engine)
    from tests.reliability.web_targets import XSS

    clients: dict[str, TestClient] = {
        "anonymous": TestClient(app, base_url="http://testserver", follow_redirects=False)
    }
    patient = make_account(Role.PATIENT, fhir_ref=f"Patient/{ids['patient']}", display_name=XSS)
    sign_in(web, engine, patient)
    clients["patient"] = web
    for role in ("practitioner", "org_admin"):
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        kw: dict[str, str] = {"display_name": XSS}
        if role == "practitioner":
            kw["fhir_ref"] = f"Practitioner/{ids['practitioner']}"
        else:
            kw["organization_ref"] = "Organization/org-x"
        sign_in(c, engine, make_account(Role(role), totp=True, **kw))
        clients[role] = c
    return {"ids": ids, "clients": clients}


@pytest.mark.parametrize(("name", "role", "template"), XSS_PAGES, ids=[p[0] for p in XSS_PAGES])
def test_pages_escape_what_people_wrote(
    xss_clients: dict[str, Any], name: str, role: str, template: str
) -> None:
    url = template.format(**xss_clients["ids"])
    r = xss_clients["clients"][role].get(url)
    assert r.status_code < 500, r.text[:500]
    body = r.text
    for marker in XSS_MARKERS:
        assert marker not in body, f"{name}: unescaped {marker!r}"
    if r.headers.get("content-type", "").startswith("text/html"):
        csp = r.headers.get("content-security-policy", "")
        assert "script-src" in csp or "default-src" in csp, f"{name}: no CSP"
        assert "'unsafe-inline'" not in csp.split("script-src")[-1].split(";")[0]


def test_the_fhir_api_returns_json_not_html(client: TestClient) -> None:
    from tests.reliability.web_targets import XSS

    created = client.post(
        "/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": XSS}]}
    )
    assert created.status_code == 201
    for r in (created, client.get(f"/fhir/Patient/{created.json()['id']}", headers={"Accept": "text/html"}),
              client.get("/fhir/Patient", params={"name": XSS}), client.get(f"/fhir/{quote(XSS, safe='')}")):  # fmt: skip
        assert r.headers["content-type"].startswith(FHIR)
        assert r.headers.get("x-content-type-options", "nosniff") == "nosniff"


# -- path traversal in downloads ------------------------------------------------------------------

TRAVERSALS = ["../../../../etc/passwd", "..%2f..%2f..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
              "....//....//etc/passwd", "..\\..\\..\\etc\\passwd", "%252e%252e%252fetc%252fpasswd",
              "/etc/passwd", "..%00/etc/passwd", "../../../pyproject.toml", "../../../src/medcard/config.py",
              "../templates/base.html"]  # fmt: skip


@pytest.mark.parametrize("trick", TRAVERSALS)
def test_static_files_never_leave_their_folder(web: TestClient, trick: str) -> None:
    r = web.get("/static/" + trick)
    assert r.status_code in (400, 404, 405), (trick, r.status_code)
    assert "root:" not in r.text
    assert "[project]" not in r.text
    assert "BaseSettings" not in r.text


@pytest.mark.parametrize("download", DOWNLOADS)
@pytest.mark.parametrize("trick", TRAVERSALS[:4])
def test_downloads_ignore_path_tricks_in_their_parameters(
    web: TestClient, engine: Engine, make_account: Callable[..., Account], download: str, trick: str
) -> None:
    sign_in(web, engine, make_account(Role.ORG_ADMIN, totp=True, organization_ref="Organization/o"))
    for url in (
        f"{download}/{trick}",
        f"{download}?file={quote(trick)}&format={quote(trick)}&name={quote(trick)}",
    ):
        r = web.get(url)
        assert r.status_code < 500
        assert "root:" not in r.text
        assert "[project]" not in r.text


# -- oversized and deeply nested JSON ---------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_with_413(
    settings: Settings, engine: Engine, token: Callable[..., str]
) -> None:
    small = create_app(settings.model_copy(update={"max_body_bytes": 64 * 1024}), engine)
    with TestClient(small, base_url="http://testserver") as c:
        auth = {"Authorization": f"Bearer {token()}", "Content-Type": FHIR}
        big = {"resourceType": "Patient", "name": [{"family": "Я" * 80_000}]}
        r = c.post("/fhir/Patient", json=big, headers=auth)
        assert r.status_code == 413
        assert r.json()["resourceType"] == "OperationOutcome"

        def chunks() -> Any:  # no Content-Length: the limit must hold while streaming
            for _ in range(200):
                yield b" " * 1024

        r = c.post("/fhir/Patient", content=chunks(), headers=auth)
        assert r.status_code == 413


@pytest.mark.parametrize("depth", [100, 1_000, 5_000, 100_000])
def test_deeply_nested_json_is_refused_not_crashed(client: TestClient, depth: int) -> None:
    nested = '{"url":"urn:x","extension":[' * depth + "1" + "]}" * depth
    body = '{"resourceType":"Patient","extension":[' + nested + "]}"
    for url in ("/fhir/Patient", "/fhir/"):
        r = client.post(url, content=body, headers={"Content-Type": FHIR})
        assert r.status_code in (400, 413, 422), (depth, r.status_code, r.text[:200])
        assert r.json()["resourceType"] == "OperationOutcome"
    arrays = "[" * depth + "]" * depth
    r = client.post(
        "/fhir/Patient",
        content='{"resourceType":"Patient","x":' + arrays + "}",
        headers={"Content-Type": FHIR},
    )
    assert r.status_code in (400, 413, 422)


def test_a_wide_bundle_is_bounded(client: TestClient) -> None:
    entries = [{"request": {"method": "GET", "url": "metadata"}}] * 10_001
    r = client.post("/fhir/", json={"resourceType": "Bundle", "type": "batch", "entry": entries})
    assert r.status_code == 413


def test_dates_at_the_end_of_time_are_stored_and_searched(client: TestClient) -> None:
    """Found by the fuzzer: 9999-12-31T23:59:59.999999Z overflowed the date index (500)."""
    p = client.post("/fhir/Patient", json=factories.patient()).json()
    obs = factories.observation(p["id"], date="9999-12-31T23:59:59.999999Z")
    assert client.post("/fhir/Observation", json=obs).status_code == 201
    for q in ("9999", "9999-12-31T23:59:59.999999Z", "ge9999-12-31", "0001-01-01T00:00:00+14:00"):
        assert client.get("/fhir/Observation", params={"date": q}).status_code == 200


def test_an_unknown_nested_resource_type_is_a_400(client: TestClient) -> None:
    """Found by the fuzzer: fhir.resources raised KeyError for Bundle.entry.resource of an
    unknown type (500)."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Nope"}}],
    }
    r = client.post("/fhir/Bundle", json=bundle)
    assert r.status_code == 400
    contained = {"resourceType": "Patient", "contained": [{"resourceType": "Patientt", "id": "a"}]}
    assert client.post("/fhir/Patient", json=contained).status_code == 400


def test_the_tables_survive_the_battery(engine: Engine) -> None:
    assert {"resources", "resource_versions", "audit_log"} <= set(inspect(engine).get_table_names())
