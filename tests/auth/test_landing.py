"""After sign-in each role lands where its work is; a person with several roles chooses
one once, and the choice is remembered; a safe ``next=`` still wins (issue 20, item 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.accounts import Account, AccountError, Role
from medcard.web.homes import CHOOSER, HOMES
from tests.auth.conftest import (
    Clock,
    audit_rows,
    code_for,
    csrf_of,
    login,
    sign_in,
    submit_code,
)

LINKS: dict[Role, dict[str, str]] = {
    Role.PATIENT: {"fhir_ref": "Patient/p-1"},
    Role.PRACTITIONER: {"fhir_ref": "Practitioner/d-1", "organization_ref": "Organization/o-1"},
    Role.REGISTRAR: {"organization_ref": "Organization/o-1"},
    Role.ORG_ADMIN: {"organization_ref": "Organization/o-1"},
    Role.REVIEWER: {"organization_ref": "Organization/o-1"},
    Role.REGION_ADMIN: {"region": "77"},
}


def _person(make_account: Callable[..., Account], role: Role, **kw: Any) -> Account:
    return make_account(role, totp=role is not Role.PATIENT, **LINKS[role], **kw)


def _signed_in_at(web: TestClient, engine: Engine, account: Account, **extra: str) -> str:
    """Sign in through the forms (with the code for staff); where the browser is sent."""
    r = login(web, account.login, **extra)
    assert r.status_code == 303, r.text
    if r.headers["location"].startswith("/login/mfa"):
        fresh = accounts.get(engine, account.id)
        assert fresh is not None
        page = web.get(r.headers["location"])
        assert page.status_code == 200, page.text
        data = {"code": code_for(fresh), "csrf_token": csrf_of(page.text)}
        if "next" in extra:
            data["next"] = extra["next"]
        r = web.post("/login/mfa", data=data)
        assert r.status_code == 303, r.text
    location: str = r.headers["location"]
    return location


@pytest.mark.parametrize("role", list(LINKS))
def test_each_role_lands_on_its_home(
    web: TestClient, engine: Engine, make_account: Callable[..., Account], role: Role
) -> None:
    account = _person(make_account, role)
    home = _signed_in_at(web, engine, account)
    assert home == HOMES[role]
    r = web.get(home)
    # the home is theirs: it opens (the patient's /card goes on to the card itself)
    assert r.status_code in (200, 303), r.text
    if r.status_code == 303:
        assert r.headers["location"] == "/card/p-1"


@pytest.mark.parametrize("role", [Role.PATIENT, Role.PRACTITIONER, Role.REVIEWER])
def test_a_safe_next_still_wins(
    web: TestClient, engine: Engine, make_account: Callable[..., Account], role: Role
) -> None:
    account = _person(make_account, role)
    assert _signed_in_at(web, engine, account, next="/me/security") == "/me/security"


@pytest.mark.parametrize("evil", ["//evil.example/", "https://evil.example/x", "/\\evil"])
def test_an_unsafe_next_lands_home(
    new_client: Callable[..., TestClient],
    engine: Engine,
    make_account: Callable[..., Account],
    evil: str,
) -> None:
    account = _person(make_account, Role.PRACTITIONER)
    assert _signed_in_at(new_client(), engine, account, next=evil) == "/workspace"


def test_several_roles_choose_once_and_the_choice_is_remembered(
    web: TestClient,
    new_client: Callable[..., TestClient],
    engine: Engine,
    make_account: Callable[..., Account],
    fake_clock: Clock,
) -> None:
    doctor = _person(make_account, Role.PRACTITIONER)
    accounts.grant_role(engine, doctor.id, Role.REVIEWER)

    assert _signed_in_at(web, engine, doctor) == CHOOSER
    chooser = web.get(CHOOSER)
    assert chooser.status_code == 200
    assert "В какой роли вы работаете" in chooser.text
    assert 'value="practitioner"' in chooser.text
    assert 'value="reviewer"' in chooser.text
    assert 'value="registrar"' not in chooser.text
    r = web.post(CHOOSER, data={"role": "reviewer", "csrf_token": csrf_of(chooser.text)})
    assert r.status_code == 303
    assert r.headers["location"] == "/review"
    # they now act as a reviewer: the review queue opens, the workspace does not
    assert web.get("/review").status_code == 200
    assert web.get("/workspace").status_code == 403
    stored = accounts.get(engine, doctor.id)
    assert stored is not None
    assert stored.home_role == "reviewer"
    assert stored.role is Role.REVIEWER
    (entry,) = audit_rows(engine, "role-choice")
    assert entry["actor"] == doctor.actor
    assert "reviewer" in entry["detail"]

    # next time: straight to the chosen home, no chooser
    fake_clock.advance(31)  # a new code (each is accepted once)
    other = new_client()
    assert _signed_in_at(other, engine, doctor) == "/review"
    # and the choice can be changed from their own page
    me = other.get("/me")
    assert 'href="/me/role"' in me.text
    page = other.get(CHOOSER)
    r = other.post(CHOOSER, data={"role": "practitioner", "csrf_token": csrf_of(page.text)})
    assert r.headers["location"] == "/workspace"
    assert other.get("/workspace").status_code == 200
    fake_clock.advance(31)
    assert _signed_in_at(new_client(), engine, doctor) == "/workspace"


def test_a_role_not_held_cannot_be_chosen(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    doctor = _person(make_account, Role.PRACTITIONER)
    accounts.grant_role(engine, doctor.id, Role.REVIEWER)
    assert _signed_in_at(web, engine, doctor) == CHOOSER
    page = web.get(CHOOSER)
    for role in ("region_admin", "patient", "system", ""):
        r = web.post(CHOOSER, data={"role": role, "csrf_token": csrf_of(page.text)})
        assert r.status_code == 400, role
    stored = accounts.get(engine, doctor.id)
    assert stored is not None
    assert stored.home_role == ""
    assert stored.role is Role.PRACTITIONER
    # without the form's CSRF token nothing changes either
    r = web.post(CHOOSER, data={"role": "reviewer"})
    assert r.status_code == 403
    stored = accounts.get(engine, doctor.id)
    assert stored is not None
    assert stored.home_role == ""


def test_one_role_needs_no_chooser(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    registrar = _person(make_account, Role.REGISTRAR)
    sign_in(web, engine, registrar)
    r = web.get(CHOOSER)
    assert r.status_code == 303
    assert r.headers["location"] == "/registrar/access-requests"
    assert 'href="/me/role"' not in web.get("/me").text


def test_only_staff_combine_roles(engine: Engine, make_account: Callable[..., Account]) -> None:
    patient = _person(make_account, Role.PATIENT)
    with pytest.raises(AccountError):
        accounts.grant_role(engine, patient.id, Role.PRACTITIONER)
    doctor = _person(make_account, Role.PRACTITIONER)
    with pytest.raises(AccountError):
        accounts.grant_role(engine, doctor.id, Role.PATIENT)
    with pytest.raises(AccountError):
        accounts.grant_role(engine, doctor.id, "system")
    both = accounts.grant_role(engine, doctor.id, Role.REGISTRAR)
    assert both.roles == {Role.PRACTITIONER, Role.REGISTRAR}
    assert both.role is Role.PRACTITIONER  # nothing chosen yet: the account's own role


def test_the_chooser_needs_the_second_factor_first(
    web: TestClient, engine: Engine, make_account: Callable[..., Account]
) -> None:
    doctor = _person(make_account, Role.PRACTITIONER)
    accounts.grant_role(engine, doctor.id, Role.REVIEWER)
    assert login(web, doctor.login).headers["location"] == "/login/mfa"
    r = web.get(CHOOSER)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login/mfa")
    fresh = accounts.get(engine, doctor.id)
    assert fresh is not None
    assert submit_code(web, "/login/mfa", code_for(fresh)).headers["location"] == CHOOSER
