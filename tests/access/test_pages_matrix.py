"""The page access matrix (issue 3): every role × every page × how far the browser got
with signing in, and the answer it gets.

Pages as they exist now.  A browser that is not signed in goes to the login page; staff
who gave only their password go to the one-time-code page (a patient without codes
turned on is signed in by the password alone); a signed-in person gets the page, or a
"not allowed" page (403) when the role may not see it.  The OAuth consent screen is
shown to everyone with a valid request: each role gets its own kind of scope.

Plus: a patient's "who opened my card" never shows another patient's entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.smart import Scopes
from medcard.audit.recorder import AuditBuffer
from medcard.auth import accounts
from medcard.auth.oauth.clients import OAuthClient, create_client
from medcard.auth.sessions import COOKIE_NAME, create_session
from tests import factories

PASSWORD = "длинный пароль для теста 42"
REDIRECT = "https://app.example/callback"
APP_SCOPE = "openid fhirUser launch/patient patient/*.rs user/*.rs"

ROLES = ("patient", "practitioner", "registrar", "org_admin", "reviewer", "region_admin")
STAFF = frozenset(ROLES) - {"patient"}
PAGES = (
    "/me",
    "/me/password",
    "/me/security",
    "/me/access-log",
    "/me/my-access",
    "/admin/audit",
    "/admin/audit/export",
    "/oauth/authorize",
)
STATES = ("signed-in", "password-only", "anonymous")
OK, FORBIDDEN, TO_LOGIN, TO_CODE = "200", "403", "303 /login", "303 /login/mfa"


def signed_in_answer(role: str, page: str) -> str:
    """What a fully signed-in person of this role gets."""
    if page == "/me/access-log":  # "who opened my card": patients only
        return OK if role == "patient" else FORBIDDEN
    if page.startswith("/admin/audit"):  # reports: holders of audit:report
        return OK if role in ("org_admin", "region_admin") else FORBIDDEN
    return OK  # own pages, and the consent screen (each role its own scopes)


def expected(role: str, page: str, state: str) -> str:
    if state == "anonymous":
        return TO_LOGIN
    if state == "password-only" and role in STAFF:
        return TO_CODE
    return signed_in_answer(role, page)


MATRIX = {
    (role, page, state): expected(role, page, state)
    for role in ROLES
    for page in PAGES
    for state in STATES
}


@pytest.fixture
def web(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


@pytest.fixture
def oauth_app(engine: Engine) -> OAuthClient:
    client, _ = create_client(
        engine, "Приложение", public=True, redirect_uris=[REDIRECT], scope=APP_SCOPE
    )
    return client


def make_patient(client: TestClient, family: str = "Иванов") -> str:
    r = client.post("/fhir/Patient", json=factories.patient(family=family))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def make_account(engine: Engine, client: TestClient, role: str, login: str) -> accounts.Account:
    kw: dict[str, str] = {"display_name": "Проверка Доступа"}
    if role == "patient":
        kw["fhir_ref"] = f"Patient/{make_patient(client)}"
    elif role != "region_admin":
        kw["organization_ref"] = "Organization/org-a"
    else:
        kw["region"] = "77"
    return accounts.create_account(engine, login, PASSWORD, role, **kw)


def url_for(page: str, oauth_app: OAuthClient) -> tuple[str, dict[str, str]]:
    if page != "/oauth/authorize":
        return page, {}
    return page, {
        "response_type": "code",
        "client_id": oauth_app.client_id,
        "redirect_uri": REDIRECT,
        "scope": APP_SCOPE,
        "state": "s1",
        "aud": "http://testserver/fhir",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }


def answer(response: Any) -> str:
    if response.status_code == 303:
        location = response.headers["location"]
        if location.startswith("/login/mfa"):
            return TO_CODE
        if location.startswith("/login"):
            return TO_LOGIN
        return f"303 {location}"
    return str(response.status_code)


@pytest.mark.parametrize(("role", "page", "state"), sorted(MATRIX))
def test_page_access(
    role: str,
    page: str,
    state: str,
    engine: Engine,
    client: TestClient,
    web: TestClient,
    oauth_app: OAuthClient,
) -> None:
    account = make_account(engine, client, role, f"{role}@example.ru")
    if state != "anonymous":
        cookie, _ = create_session(engine, account.id, mfa_ok=state == "signed-in")
        web.cookies.set(COOKIE_NAME, cookie)
    path, params = url_for(page, oauth_app)
    r = web.get(path, params=params)
    want = MATRIX[(role, page, state)]
    assert answer(r) == want, r.text[:500]
    if want == FORBIDDEN:
        assert r.headers["content-type"].startswith("text/html")  # a page, not JSON
    if want == TO_LOGIN:
        assert "next=" in r.headers["location"]  # back to the page after signing in
    if want == OK and page == "/oauth/authorize":
        assert 'name="decision" value="allow"' in r.text
    if want == OK and page == "/admin/audit/export":
        assert r.headers["content-disposition"].startswith("attachment")


def test_the_matrix_covers_every_role_page_and_state() -> None:
    assert len(MATRIX) == len(ROLES) * len(PAGES) * len(STATES)
    # The consent screen shows staff their role's user/ scopes, patients patient/ ones.
    assert {MATRIX[(r, "/oauth/authorize", "signed-in")] for r in ROLES} == {OK}


# -- "who opened my card" shows one's own card only ----------------------------------------


def _seed(engine: Engine, patient_id: str, marker: str, actor: str) -> None:
    """Two entries for a patient, as requests write them: a read and an emergency read."""
    buffer = AuditBuffer(AccessContext(actor, Scopes(())))
    buffer.add("read", "Observation", f"obs-{marker}", patient_id, purpose=f"цель-{marker}")
    buffer.add(
        "read",
        "Patient",
        patient_id,
        patient_id,
        purpose=f"экстренно-{marker}",
        emergency=True,
        organization=f"Organization/org-{marker}",
    )
    buffer.flush_separately(engine)


def test_patients_access_log_never_shows_another_patients_entries(
    engine: Engine, client: TestClient, app: Any
) -> None:
    anna = make_account(engine, client, "patient", "anna@example.ru")
    boris = make_account(engine, client, "patient", "boris@example.ru")
    anna_id = anna.fhir_ref.split("/", 1)[1]
    boris_id = boris.fhir_ref.split("/", 1)[1]
    _seed(engine, anna_id, "anna", "Practitioner/doc-for-anna")
    _seed(engine, boris_id, "boris", "Practitioner/doc-for-boris")

    for me, mine, theirs, their_id in (
        (anna, "anna", "boris", boris_id),
        (boris, "boris", "anna", anna_id),
    ):
        cookie, _ = create_session(engine, me.id, mfa_ok=True)
        with TestClient(app, base_url="http://testserver", follow_redirects=False) as web:
            web.cookies.set(COOKIE_NAME, cookie)
            for query in (
                {},
                {"emergency": "1"},
                {"page": "2"},
                # the page takes no patient from the request, however it is asked
                {"patient": their_id},
                {"patient": f"Patient/{their_id}", "patient_id": their_id},
            ):
                r = web.get("/me/access-log", params=query)
                assert r.status_code == 200, r.text
                assert theirs not in r.text, query
                if not any(their_id in v for v in query.values()):
                    assert their_id not in r.text, query
                if query.get("page") != "2":
                    assert f"экстренно-{mine}" in r.text, query
            whole = web.get("/me/access-log").text
            assert f"цель-{mine}" in whole
            assert f"doc-for-{mine}" in whole
