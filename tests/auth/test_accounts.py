"""Account services: argon2id hashes, login normalisation, roles and links, rehashing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import Engine, select

from medcard.auth import accounts, passwords
from medcard.auth.accounts import Account, AccountError, Role
from medcard.auth.passwords import PasswordPolicyError
from medcard.auth.sessions import create_session, load_session
from medcard.db.tables import accounts as accounts_table
from tests.auth.conftest import PASSWORD


def stored_hash(engine: Engine, account_id: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(accounts_table.c.password_hash).where(accounts_table.c.id == account_id)
            ).scalar_one()
        )


def test_password_is_stored_as_an_argon2id_hash(
    engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    stored = stored_hash(engine, account.id)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_production_parameters_are_rfc9106_argon2id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the production hasher, not the suite's cheap one
    assert passwords.HASHER.hash("a password of length").startswith(
        "$argon2id$v=19$m=65536,t=3,p=4$"
    )


def test_hash_is_upgraded_at_login_when_parameters_change(
    engine: Engine, make_account: Callable[..., Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account()
    old = stored_hash(engine, account.id)
    assert "m=1024,t=1,p=1" in old
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1, type=Type.ID)
    monkeypatch.setattr(passwords, "HASHER", stronger)
    assert accounts.authenticate(engine, account.login, PASSWORD).ok
    new = stored_hash(engine, account.id)
    assert new != old
    assert "m=2048,t=2,p=1" in new
    assert accounts.authenticate(engine, account.login, PASSWORD).ok


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Ivan.Petrov@Example.ORG ", "ivan.petrov@example.org"),
        ("8 (916) 123-45-67", "+79161234567"),
        ("+7 916 123 45 67", "+79161234567"),
        ("9161234567", "+79161234567"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_logins_are_normalised(given: str, stored: str) -> None:
    assert accounts.normalise_login(given) == stored


@pytest.mark.parametrize("bad", ["", "ivan", "12345", "a@b", "ivan@@example.org"])
def test_malformed_logins_are_refused(bad: str) -> None:
    with pytest.raises(AccountError):
        accounts.normalise_login(bad)


def test_login_is_unique_whatever_its_case(
    engine: Engine, make_account: Callable[..., Account]
) -> None:
    make_account(login="Anna@Example.org")
    with pytest.raises(AccountError) as exc:
        make_account(login="anna@EXAMPLE.org")
    assert exc.value.code == "login_taken"
    assert accounts.get_by_login(engine, "ANNA@example.org") is not None


@pytest.mark.parametrize("role", ["lab", "system", "admin", ""])
def test_only_roles_of_people_can_hold_accounts(
    make_account: Callable[..., Account], role: str
) -> None:
    with pytest.raises(AccountError):
        make_account(role)


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short", "password_too_short"),
        ("x" * 9, "password_too_short"),
        ("long.login@example.org", "password_is_login"),
    ],
)
def test_password_policy(make_account: Callable[..., Account], password: str, code: str) -> None:
    with pytest.raises(PasswordPolicyError) as exc:
        make_account(login="long.login@example.org", password=password)
    assert exc.value.code == code


def test_links_follow_the_role(engine: Engine, make_account: Callable[..., Account]) -> None:
    patient = make_account(Role.PATIENT)
    doctor = make_account(Role.PRACTITIONER)
    registrar = make_account(Role.REGISTRAR)
    assert accounts.link(engine, patient.id, "Patient/p1").fhir_ref == "Patient/p1"
    assert accounts.link(engine, doctor.id, "Practitioner/d1").fhir_ref == "Practitioner/d1"
    linked = accounts.link(engine, registrar.id, "Organization/org-77-gp12")
    assert linked.organization_ref == "Organization/org-77-gp12"
    for account_id, ref in [
        (patient.id, "Practitioner/d1"),
        (patient.id, "Organization/o1"),
        (doctor.id, "Patient/p1"),
        (registrar.id, "Patient/p1"),
        (doctor.id, "Patient/../../etc"),
    ]:
        with pytest.raises(AccountError):
            accounts.link(engine, account_id, ref)


def test_list_and_filter_by_role(engine: Engine, make_account: Callable[..., Account]) -> None:
    make_account(Role.PATIENT)
    make_account(Role.REVIEWER)
    assert {a.role for a in accounts.list_accounts(engine)} == {Role.PATIENT, Role.REVIEWER}
    assert [a.role for a in accounts.list_accounts(engine, "reviewer")] == [Role.REVIEWER]


def test_deactivation_refuses_sign_in_and_ends_sessions(
    engine: Engine, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    cookie, _ = create_session(engine, account.id, mfa_ok=False)
    accounts.deactivate(engine, account.id)
    assert load_session(engine, cookie, idle_seconds=600) is None
    attempt = accounts.authenticate(engine, account.login, PASSWORD)
    assert attempt.outcome == "inactive"
    assert not attempt.ok


def test_secrets_are_not_in_the_account_repr(make_account: Callable[..., Account]) -> None:
    account = make_account(Role.PRACTITIONER, totp=True)
    assert account.totp_secret
    assert account.totp_secret not in repr(account)
    assert account.password_hash not in repr(account)


def test_lockout_grows_exponentially_and_is_capped() -> None:
    assert [accounts.lock_seconds(n) for n in range(4, 9)] == [0, 60, 120, 240, 480]
    assert accounts.lock_seconds(40) == accounts.LOCK_MAX_SECONDS
