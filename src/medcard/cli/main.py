"""The ``medcard`` command: serve, migrate, import, demo data and tokens."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from medcard.cli import backup as backup_cli
from medcard.cli.audit import app as audit_app
from medcard.cli.billing import app as billing_app
from medcard.cli.clients import app as clients_app
from medcard.cli.terminology import app as terminology_app
from medcard.cli.users import users_app
from medcard.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(
    help="medcard: an open-source electronic medical card (FHIR R4).", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")
app.add_typer(audit_app, name="audit")
app.add_typer(billing_app, name="billing")  # issue 9: OMS service lines
app.add_typer(terminology_app, name="terminology")  # issue 23: НСИ dictionaries
backup_cli.register(app)  # medcard backup / medcard restore
console = Console()


def _settings() -> Settings:
    return Settings()


MIGRATE_HELP = "Upgrade the schema first (under a lock, so several processes may start at once)"


def _schema_ready(engine: Engine, settings: Settings, migrate: bool) -> None:
    """Upgrade when asked (always for the embedded SQLite store), then refuse to go on
    with one line on stderr and exit 1 unless the schema is this code's head."""
    from sqlalchemy.exc import OperationalError

    from medcard.db.migrate import shown_url

    try:
        _check_schema(engine, settings, migrate)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig or exc).strip().splitlines()[0]
        Console(stderr=True).print(
            f"database at {shown_url(engine)} is unreachable: {reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _check_schema(engine: Engine, settings: Settings, migrate: bool) -> None:
    from medcard.db.migrate import head, schema_problem, upgrade

    if (migrate or settings.is_sqlite) and _knows_revision(engine):
        before = upgrade(engine)
        if migrate:
            if before == head():
                console.print(f"Schema already at {before}")
            else:
                console.print(f"Schema upgraded from {before or 'none'} to {head()}")
    problem = schema_problem(engine)
    if problem:
        engine.dispose()
        Console(stderr=True).print(problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _knows_revision(engine: Engine) -> bool:
    """False when the store is at a revision this code has never heard of (a newer
    medcard migrated it): nothing to upgrade, and the refusal below says so."""
    from medcard.db.migrate import current, known

    have = current(engine)
    return have is None or known(have)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply schema migrations to the configured store (MEDCARD_DATABASE_URL)."""
    from medcard.db.engine import make_engine
    from medcard.db.migrate import upgrade

    settings = _settings()
    engine = make_engine(settings)
    upgrade(engine, revision)  # under the same lock as --migrate
    console.print(
        f"[green]Schema is at {revision}[/green] ({engine.url.render_as_string(hide_password=True)})"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    demo: Annotated[bool, typer.Option(help="Load demo data first if the store is empty")] = False,
    demo_patients: Annotated[int, typer.Option(help="Patients for --demo")] = 100,
    migrate: Annotated[bool, typer.Option(help=MIGRATE_HELP)] = False,
) -> None:
    """Run the web server (FHIR API at /fhir). An embedded SQLite store is migrated
    automatically; on PostgreSQL it refuses to start unless the schema is up to date."""

    from medcard.db.engine import make_engine

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    engine = make_engine(settings)
    _schema_ready(engine, settings, migrate)
    if demo:
        from medcard.demo.loader import is_empty, load_demo

        if is_empty(engine):
            load_demo(engine, demo_patients, console=console)
        else:
            console.print("Demo data: the store already holds data, nothing loaded.")
    engine.dispose()
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104 - display only
    console.print(f"\n[bold green]medcard is running:[/bold green] http://{shown}:{port}/")
    console.print(
        f'FHIR API: http://{shown}:{port}/fhir   (token: medcard token --scope "system/*.*")\n'
    )
    if demo and os.environ.get("MEDCARD_STANDIN_IDP", "1") not in ("", "0", "false"):
        console.print(
            f"«Войти через Госуслуги»: http://{shown}:{port}/auth/sso — the demo's stand-in "
            "provider (not Gosuslugi): pick a person, password medcard-demo\n"
        )
    os.environ.setdefault("MEDCARD_DATA_DIR", str(settings.data_dir))
    if demo:
        os.environ.setdefault("MEDCARD_DEMO_MODE", "1")  # e.g. reset links shown on the page
        # The stand-in national identity provider (/standin-idp), at this server's port.
        os.environ.setdefault("MEDCARD_STANDIN_IDP", "1")
    os.environ["MEDCARD_HOST"], os.environ["MEDCARD_PORT"] = host, str(port)
    # Replace this process with uvicorn: the server need not carry the CLI, Alembic and
    # the demo generator for its whole life (about 70 MiB).
    command = [sys.executable, "-m", "uvicorn", "medcard.web.asgi:app", "--host", host,
               "--port", str(port), "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
    sys.stdout.flush()
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter, fixed arguments


@app.command()
def worker(
    workers: Annotated[int, typer.Option(help="Worker threads")] = 2,
    migrate: Annotated[bool, typer.Option(help=MIGRATE_HELP)] = False,
) -> None:
    """Run background jobs (document requests, extracts) from the Redis queue.

    Embedded installs need no worker: the web server consumes its own SQLite queue.
    Refuses to start unless the schema is up to date.
    """
    from medcard import jobs
    from medcard.db.engine import make_engine

    settings = _settings()
    engine = make_engine(settings)
    _schema_ready(engine, settings, migrate)
    jobs.configure(settings, engine)
    import medcard.jobs.registry  # noqa: F401 - registers every job with the queue

    console.print(
        f"medcard worker: {workers} threads, queue {'Redis' if settings.redis_url else 'SQLite'}"
    )
    jobs.run_worker(workers)


@app.command()
def token(
    scope: Annotated[
        str | None,
        typer.Option(
            help='SMART scopes; default "system/*.*", with --patient "patient/*.rs", '
            'with a role "user/*.cruds"'
        ),
    ] = None,
    patient: Annotated[
        str | None,
        typer.Option(
            help="Act for this patient: their compartment and the patient rules "
            "(never changes or deletes what a clinician entered)"
        ),
    ] = None,
    practitioner: Annotated[
        str | None, typer.Option(help="Act as this Practitioner id (role practitioner)")
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="Role claim: practitioner, registrar, org_admin, reviewer, region_admin, lab"
        ),
    ] = None,
    organization: Annotated[
        str | None, typer.Option(help="Organization id the caller works for")
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="Token subject (defaults from the options)")
    ] = None,
    lifetime: Annotated[int, typer.Option(help="Seconds until expiry")] = 3600,
) -> None:
    """Mint a bearer token signed by this server's key.

    Which rules the token gets follows from who it acts for (README, "Tokens"): with
    --patient the patient's (their compartment; entries a clinician made are read-only);
    with a role that role's; otherwise a system token that reaches everything.  A
    practitioner token carries the organisations of their active PractitionerRoles, so
    it reaches exactly the patients those organisations care for.
    """
    from medcard.access.roles import Role
    from medcard.access.smart import Scopes
    from medcard.access.subjects import token_claims
    from medcard.auth.tokens import (
        TokenError,
        TokenIssuer,
        load_or_create_key,
        refuse_contradictions,
    )
    from medcard.db.engine import make_engine

    settings = _settings()
    issuer = TokenIssuer(load_or_create_key(settings.signing_key_path), settings.token_issuer)
    chosen = role or ("practitioner" if practitioner else None)
    parsed: Role | None = None
    if chosen:
        try:
            parsed = Role(chosen)
        except ValueError:
            raise typer.BadParameter(f"unknown role {chosen}") from None
    sub = subject or (
        f"Practitioner/{practitioner}"
        if practitioner
        else f"Patient/{patient}"
        if patient and parsed in (None, Role.PATIENT)
        else "system:cli"
    )
    try:
        refuse_contradictions(sub, parsed)
    except TokenError as exc:
        raise typer.BadParameter(str(exc), param_hint="--subject/--role") from None
    for_patient = patient is not None and parsed in (None, Role.SYSTEM, Role.PATIENT)
    if scope is None:
        scope = "patient/*.rs" if for_patient else "user/*.cruds" if parsed else "system/*.*"
    if for_patient and any(s.level == "system" for s in Scopes.parse(scope).scopes):
        raise typer.BadParameter(
            "a token that acts for a patient gets the patient rules, which system/ scopes "
            'do not widen: use patient/ scopes (e.g. "patient/*.rs"), or drop --patient '
            "for a system token",
            param_hint="--scope",
        )
    extra = {}
    if parsed:
        org_ref = f"Organization/{organization}" if organization else ""
        engine = make_engine(settings)
        try:
            extra = token_claims(engine, parsed, sub, org_ref)
        finally:
            engine.dispose()
    print(issuer.mint(sub, scope, patient=patient, lifetime=lifetime, extra=extra))


@app.command("import")
def import_(
    paths: Annotated[
        list[Path], typer.Argument(help="Bundle .json or .ndjson files, or folders of them")
    ],
    restart: Annotated[
        bool, typer.Option(help="Ignore saved progress and import from the start")
    ] = False,
) -> None:
    """Import FHIR data; resumable: re-running skips what was already imported."""
    from medcard.cli.store import open_store
    from medcard.importer import import_paths

    with open_store() as engine:
        summary = import_paths(engine, paths, console=console, restart=restart)
    table = Table(title="Import summary")
    for col in ("files", "created", "updated", "failed", "skipped (done before)"):
        table.add_column(col, justify="right")
    table.add_row(*(str(summary[k]) for k in ("files", "created", "updated", "failed", "skipped")))
    console.print(table)
    for reason in summary["reasons"][:50]:
        console.print(f"[red]failed[/red] {reason}")
    if summary["failed"]:
        raise typer.Exit(1)


@app.command()
def demo(
    patients: Annotated[int, typer.Option(help="How many synthetic patients")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same population)")] = 1,
) -> None:
    """Load a realistic synthetic population: two regions, polyclinics, years of care."""
    from medcard.cli.store import open_store
    from medcard.demo.loader import load_demo

    with open_store() as engine:
        load_demo(engine, patients, seed=seed, console=console)


if __name__ == "__main__":
    app()
