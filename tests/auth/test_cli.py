"""``medcard users``: create, list, reset-password, link, totp, deactivate."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from medcard.auth import accounts
from medcard.auth.accounts import Role
from medcard.cli.main import app as cli
from tests.auth.conftest import PASSWORD, audit_rows


@pytest.fixture
def run(settings: Any, engine: Engine) -> Any:
    """Invoke the CLI against the test database; returns the result."""
    env = {
        "MEDCARD_DATABASE_URL": settings.resolved_database_url,
        "MEDCARD_DATA_DIR": str(settings.data_dir),
        "COLUMNS": "250",
    }
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, ok: bool = True) -> Any:
        result = runner.invoke(cli, ["users", *args], env=env, input=input)
        assert (result.exit_code == 0) == ok, result.output
        return result

    return invoke


def test_create_list_link_and_reset(run: Any, engine: Engine) -> None:
    run(
        "create",
        "--login",
        "Doctor@Example.org",
        "--role",
        "practitioner",
        "--password",
        PASSWORD,
        "--name",
        "Кудрявцев Павел Георгиевич",
        "--link",
        "Practitioner/prac-77-gp12-therapist-1",
        "--organization",
        "Organization/org-77-gp12",
        "--region",
        "77",
    )
    account = accounts.get_by_login(engine, "doctor@example.org")
    assert account is not None
    assert account.role is Role.PRACTITIONER
    assert account.fhir_ref == "Practitioner/prac-77-gp12-therapist-1"
    assert account.organization_ref == "Organization/org-77-gp12"
    assert account.region == "77"
    assert accounts.authenticate(engine, "doctor@example.org", PASSWORD).ok

    listed = run("list").output
    assert "doctor@example.org" in listed
    assert "practitioner" in listed
    assert "Organization/org-77-gp12" in listed

    run("link", "doctor@example.org", "Practitioner/prac-77-gp12-therapist-2")
    assert accounts.get(engine, account.id).fhir_ref.endswith("therapist-2")  # type: ignore[union-attr]

    run("reset-password", "doctor@example.org", "--password", "another passphrase")
    assert accounts.authenticate(engine, "doctor@example.org", "another passphrase").ok
    interactions = [e["interaction"] for e in audit_rows(engine) if e["actor"] == "system:cli"]
    assert interactions == ["account-create", "account-link", "password-reset"]


def test_password_is_prompted_when_omitted(run: Any, engine: Engine) -> None:
    result = run(
        "create",
        "--login",
        "+7 916 000-00-01",
        "--role",
        "patient",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert PASSWORD not in result.output  # hidden input
    assert accounts.authenticate(engine, "89160000001", PASSWORD).ok


@pytest.mark.parametrize(
    "args",
    [
        ("--login", "x@example.org", "--role", "lab"),  # not a role of a person
        ("--login", "x@example.org", "--role", "patient", "--organization", "Organization/o1"),
        ("--login", "x@example.org", "--role", "patient", "--link", "Practitioner/x"),
        ("--login", "not a login", "--role", "patient"),
    ],
)
def test_create_refuses_bad_input_without_a_traceback(run: Any, args: tuple[str, ...]) -> None:
    result = run("create", "--password", PASSWORD, *args, ok=False)
    assert "Refused" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_duplicate_login_and_weak_password_are_refused(run: Any) -> None:
    run("create", "--login", "a@example.org", "--role", "patient", "--password", PASSWORD)
    dup = run(
        "create", "--login", "A@example.org", "--role", "patient", "--password", PASSWORD, ok=False
    )
    assert "exists" in dup.output
    weak = run(
        "create", "--login", "b@example.org", "--role", "patient", "--password", "short", ok=False
    )
    assert "at least 10" in weak.output
    assert (
        "nobody"
        in run("reset-password", "nobody@example.org", "--password", PASSWORD, ok=False).output
    )


def test_totp_prints_the_secret_and_uri(run: Any, engine: Engine) -> None:
    run("create", "--login", "reg@example.org", "--role", "registrar", "--password", PASSWORD)
    output = run("totp", "reg@example.org").output
    account = accounts.get_by_login(engine, "reg@example.org")
    assert account is not None
    assert account.totp_enabled
    assert account.totp_secret
    assert account.totp_secret in output
    assert "otpauth://totp/medcard:reg%40example.org?secret=" in output.replace("\n", "")


def test_deactivate(run: Any, engine: Engine) -> None:
    run("create", "--login", "old@example.org", "--role", "reviewer", "--password", PASSWORD)
    run("deactivate", "old@example.org")
    assert not accounts.authenticate(engine, "old@example.org", PASSWORD).ok
    assert "deactivated" in run("list").output


def test_set_role_changes_a_staff_role_and_ends_its_sessions(run: Any, engine: Engine) -> None:
    from medcard.auth.sessions import create_session, load_session

    run(
        "create",
        "--login",
        "doc@example.org",
        "--role",
        "practitioner",
        "--password",
        PASSWORD,
        "--link",
        "Practitioner/p1",
    )
    account = accounts.get_by_login(engine, "doc@example.org")
    assert account is not None
    cookie, _ = create_session(engine, account.id, mfa_ok=True)
    run("set-role", "doc@example.org", "reviewer")
    changed = accounts.get(engine, account.id)
    assert changed is not None
    assert changed.role is Role.REVIEWER
    assert changed.fhir_ref == ""  # a reviewer does not act as a Practitioner
    assert load_session(engine, cookie, idle_seconds=900) is None
    refused = run("set-role", "doc@example.org", "patient", ok=False)
    assert "cannot become" in refused.output
    interactions = [e["interaction"] for e in audit_rows(engine) if e["actor"] == "system:cli"]
    assert interactions == ["account-create", "account-role"]


def test_grant_role_lets_a_doctor_also_review(run: Any, engine: Engine) -> None:
    doctor = accounts.create_account(
        engine, "doc2@example.org", PASSWORD, Role.PRACTITIONER, organization_ref="Organization/o"
    )
    out = run("grant-role", "doc2@example.org", "reviewer").output
    assert "practitioner, reviewer" in out
    found = accounts.get(engine, doctor.id)
    assert found is not None
    assert found.roles == {Role.PRACTITIONER, Role.REVIEWER}
    assert "practitioner (+reviewer)" in run("list").output
    (entry,) = [e for e in audit_rows(engine) if e["interaction"] == "account-role"]
    assert "granted role reviewer" in entry["detail"]
    patient = accounts.create_account(engine, "pat2@example.org", PASSWORD, Role.PATIENT)
    run("grant-role", "pat2@example.org", "practitioner", ok=False)
    assert accounts.get(engine, patient.id).roles == {Role.PATIENT}  # type: ignore[union-attr]
