"""``medcard users``: create and look after sign-in accounts from the command line.

Role and links are set here (and later on admin pages), never by a web form the
account holder fills in.  Every change is written to the audit log as ``system:cli``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from medcard.cli.store import open_store

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from medcard.auth.accounts import Account

users_app = typer.Typer(
    help="Sign-in accounts: create, list, reset, link, TOTP.", no_args_is_help=True
)
CLI_ACTOR = "system:cli"


def console() -> Console:
    """Made per command, so the terminal width (COLUMNS) is read when the command runs."""
    return Console()


_engine = open_store


@contextmanager
def _refusals() -> Iterator[None]:
    """Print a refused operation as one red line and exit 1, without a traceback."""
    from medcard.auth.accounts import AccountError
    from medcard.auth.passwords import PasswordPolicyError

    try:
        yield
    except (AccountError, PasswordPolicyError) as exc:
        console().print(f"[red]Refused:[/red] {exc}")
        raise typer.Exit(1) from None


def _find(engine: Engine, login: str) -> Account:
    from medcard.auth.accounts import get_by_login

    account = get_by_login(engine, login)
    if account is None:
        console().print(f"[red]No account with login {login!r}[/red]")
        raise typer.Exit(1)
    return account


def _audit(engine: Engine, interaction: str, account: Account, detail: str) -> None:
    from medcard.audit.recorder import SUCCESS
    from medcard.auth.accounts import audit

    audit(
        engine, CLI_ACTOR, [(interaction, SUCCESS, f"{account.actor}: {detail}")], client_id="cli"
    )


@users_app.command("create")
def create(
    login: Annotated[str, typer.Option(help="E-mail address or phone number")],
    role: Annotated[
        str,
        typer.Option(help="patient, practitioner, registrar, org_admin, reviewer or region_admin"),
    ],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="Prompted if omitted"
        ),
    ],
    name: Annotated[str, typer.Option(help="Display name")] = "",
    link: Annotated[str, typer.Option(help="Patient/<id> or Practitioner/<id>")] = "",
    organization: Annotated[str, typer.Option(help="Organization/<id> the person works for")] = "",
    region: Annotated[str, typer.Option(help="Region code, e.g. 77")] = "",
) -> None:
    """Create an account (staff will be asked to set up TOTP at their first sign-in)."""
    from medcard.auth.accounts import create_account

    with _engine() as engine, _refusals():
        account = create_account(
            engine,
            login,
            password,
            role,
            display_name=name,
            fhir_ref=link,
            organization_ref=organization,
            region=region,
        )
        _audit(engine, "account-create", account, f"created as {account.role.value}")
    console().print(
        f"[green]Created[/green] {account.login} ({account.role.value}), id {account.id}"
    )


@users_app.command("list")
def list_(
    role: Annotated[str | None, typer.Option(help="Only this role")] = None,
) -> None:
    """List accounts as a table."""
    from medcard import clock
    from medcard.auth.accounts import list_accounts

    with _engine() as engine, _refusals():
        rows = list_accounts(engine, role)
    table = Table(title=f"Accounts ({len(rows)})")
    for column in ("login", "role", "name", "linked", "organisation", "region", "TOTP", "state"):
        table.add_column(column)
    now = clock.now_micros()
    for a in rows:
        state = "deactivated" if not a.active else "locked" if a.locked_until > now else "active"
        others = sorted(r.value for r in a.roles - {a.role})
        table.add_row(
            a.login,
            a.role.value + (f" (+{', '.join(others)})" if others else ""),
            a.display_name,
            a.fhir_ref,
            a.organization_ref,
            a.region,
            "on" if a.totp_enabled else "off",
            state,
        )
    console().print(table)


@users_app.command("reset-password")
def reset_password(
    login: Annotated[str, typer.Argument(help="The account's login")],
    password: Annotated[
        str,
        typer.Option(
            prompt="New password",
            hide_input=True,
            confirmation_prompt=True,
            help="Prompted if omitted",
        ),
    ],
) -> None:
    """Set a new password; also lifts a lockout and ends the account's sessions and tokens."""
    from medcard.auth.accounts import set_password

    with _engine() as engine, _refusals():
        account = set_password(engine, _find(engine, login).id, password)
        _audit(engine, "password-reset", account, "password set by an administrator")
    console().print(
        f"[green]Password changed[/green] for {account.login}; its sessions and tokens were ended."
    )


@users_app.command("link")
def link(
    login: Annotated[str, typer.Argument(help="The account's login")],
    ref: Annotated[
        str, typer.Argument(help="Patient/<id>, Practitioner/<id> or Organization/<id>")
    ],
) -> None:
    """Link an account to the FHIR resource it acts as (or the organisation it works for)."""
    from medcard.auth.accounts import link as link_account

    with _engine() as engine, _refusals():
        account = link_account(engine, _find(engine, login).id, ref)
        _audit(engine, "account-link", account, f"linked to {ref.strip()}")
    console().print(f"[green]Linked[/green] {account.login} to {ref.strip()}")


@users_app.command("set-role")
def set_role(
    login: Annotated[str, typer.Argument(help="The account's login")],
    role: Annotated[
        str, typer.Argument(help="practitioner, registrar, org_admin, reviewer, region_admin")
    ],
) -> None:
    """Change a staff account's role; its sessions and tokens end at once."""
    from medcard.auth.accounts import set_role as set_account_role

    with _engine() as engine, _refusals():
        before = _find(engine, login)
        account = set_account_role(engine, before.id, role)
        _audit(engine, "account-role", account, f"role {before.role} -> {account.role}")
    console().print(f"[green]Role changed[/green] for {account.login}: {account.role}")


@users_app.command("grant-role")
def grant_role(
    login: Annotated[str, typer.Argument(help="The account's login")],
    role: Annotated[str, typer.Argument(help="A further staff role, e.g. reviewer")],
) -> None:
    """Let a staff account also work in another staff role; it chooses one after sign-in."""
    from medcard.auth.accounts import grant_role as grant

    with _engine() as engine, _refusals():
        account = grant(engine, _find(engine, login).id, role)
        _audit(engine, "account-role", account, f"granted role {role.strip()}")
    held = ", ".join(sorted(r.value for r in account.roles))
    console().print(f"[green]Granted[/green] {role.strip()} to {account.login} (roles: {held})")


@users_app.command("totp")
def totp(login: Annotated[str, typer.Argument(help="The account's login")]) -> None:
    """Turn on TOTP with a new secret (replacing any old one) and print it and its URI."""
    from medcard.auth.accounts import enable_totp
    from medcard.auth.mfa import provisioning_uri

    with _engine() as engine, _refusals():
        account = _find(engine, login)
        secret = enable_totp(engine, account.id)
        _audit(engine, "mfa-enrol", account, "TOTP secret issued by an administrator")
    console().print(f"TOTP is on for {account.login}. Give these to the account holder only:")
    console().print(f"secret: {secret}")
    console().print(f"otpauth URI: {provisioning_uri(secret, account.login)}", soft_wrap=True)


@users_app.command("deactivate")
def deactivate(login: Annotated[str, typer.Argument(help="The account's login")]) -> None:
    """Refuse further sign-ins and end the account's sessions and tokens (the account is kept)."""
    from medcard.auth.accounts import deactivate as deactivate_account

    with _engine() as engine, _refusals():
        account = deactivate_account(engine, _find(engine, login).id)
        _audit(engine, "account-deactivate", account, "deactivated")
    console().print(f"[yellow]Deactivated[/yellow] {account.login}")
