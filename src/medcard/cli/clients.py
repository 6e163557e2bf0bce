"""``medcard clients``: register, list and revoke OAuth clients (apps and integrations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from medcard.cli.store import open_store

if TYPE_CHECKING:
    pass

app = typer.Typer(help="OAuth clients: patient apps and system integrations.", no_args_is_help=True)
console = Console()


_engine = open_store


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Shown to patients on the consent screen")],
    scope: Annotated[
        str,
        typer.Option(
            help='The most the client may ask for, e.g. "launch/patient offline_access '
            'patient/Observation.cru" or "system/Observation.cu"'
        ),
    ],
    public: Annotated[
        bool, typer.Option("--public", help="A patient app without a secret (PKCE)")
    ] = False,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help="Exact redirect URI (repeat for several)"),
    ] = None,
    grant: Annotated[
        list[str] | None,
        typer.Option(
            "--grant",
            help="authorization_code, refresh_token or client_credentials (default: "
            "code + refresh with redirect URIs, else client_credentials)",
        ),
    ] = None,
    organization: Annotated[
        str,
        typer.Option(
            help="Organization/<id> a system client acts for; its tokens then carry the "
            "lab role (results for referrals addressed to that organisation)"
        ),
    ] = "",
    client_id: Annotated[str | None, typer.Option(help="Choose the client id")] = None,
) -> None:
    """Register a client.  A confidential client's secret is printed once: store it now."""
    from medcard.auth.oauth.clients import ClientError, create_client

    try:
        with _engine() as engine:
            client, secret = create_client(
                engine,
                name,
                public=public,
                scope=scope,
                redirect_uris=redirect_uri or [],
                grant_types=grant or [],
                organization_ref=organization,
                client_id=client_id,
            )
    except ClientError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"[green]Registered[/green] {client.kind} client {client.name!r}")
    print(f"client_id={client.client_id}")
    if secret is not None:
        print(f"client_secret={secret}")
        console.print("[yellow]The secret is shown only now; only its hash is kept.[/yellow]")
    console.print(f"scope: {client.scope}\ngrants: {' '.join(client.grant_types)}")


@app.command("list")
def list_() -> None:
    """Registered clients (secrets are never shown)."""
    from medcard.auth.oauth.clients import list_clients

    table = Table(title="OAuth clients")
    table.add_column("client_id", no_wrap=True)
    for col in ("name", "kind", "grants", "scope", "organization", "active"):
        table.add_column(col)
    with _engine() as engine:
        clients = list_clients(engine)
    for c in clients:
        table.add_row(
            c.client_id,
            c.name,
            c.kind,
            " ".join(c.grant_types),
            c.scope,
            c.organization_ref,
            "yes" if c.active else "[red]revoked[/red]",
        )
    console.print(table)


@app.command("revoke")
def revoke(client_id: Annotated[str, typer.Argument(help="The client to switch off")]) -> None:
    """Deactivate a client; its codes, access and refresh tokens stop working."""
    from medcard.auth.oauth.clients import revoke_client

    with _engine() as engine:
        done = revoke_client(engine, client_id)
    if not done:
        console.print(f"[red]No active client {client_id!r}[/red]")
        raise typer.Exit(1)
    console.print(f"[green]Revoked[/green] {client_id} and every token it held")


@app.command("purge")
def purge(
    grace_hours: Annotated[int, typer.Option(help="Keep what expired less than this ago")] = 24,
) -> None:
    """Delete expired authorization codes and tokens (run it daily, e.g. from cron)."""
    from medcard.auth.oauth.store import purge_expired

    with _engine() as engine:
        n = purge_expired(engine, grace_hours * 3600)
    console.print(f"Deleted {n} expired codes and tokens")
