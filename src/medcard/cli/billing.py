"""``medcard billing generate`` and ``medcard billing flags``: OMS service lines (issue 9)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Services under the OMS policy: service lines and their problems.")
console = Console()


@app.command("generate")
def generate_command(
    patient: Annotated[str, typer.Option(help="Only this Patient id")] = "",
    since_hours: Annotated[
        float, typer.Option(help="Only cards with entries written in the last N hours (0: all)")
    ] = 0,
) -> None:
    """Bill finished entries that have no service line yet (safe to run again)."""
    from medcard.billing import generate
    from medcard.config import Settings
    from medcard.db.engine import make_engine

    engine = make_engine(Settings())
    try:
        if patient:
            pids = [patient]
        elif since_hours > 0:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=since_hours)
            pids = generate.patients_changed_since(engine, since)
        else:
            pids = generate.all_patients(engine)
        out = generate.run(engine, pids)
    finally:
        engine.dispose()
    console.print(
        f"Cards: {len(pids)}; new lines: {out.created} (billable {out.billable}, "
        f"flagged {out.not_billable}); re-priced: {out.repriced}; voided: {out.voided}; "
        f"already billed: {out.existing}; problems: {len(out.flags)}"
    )


@app.command("flags")
def flags_command(
    patient: Annotated[str, typer.Option(help="Only this Patient id")] = "",
    limit: Annotated[int, typer.Option(help="At most this many rows")] = 50,
) -> None:
    """Entries that could not be billed, and why (for the registrar)."""
    from medcard.billing import generate
    from medcard.config import Settings
    from medcard.db.engine import make_engine

    engine = make_engine(Settings())
    try:
        pids = [patient] if patient else generate.all_patients(engine)
        out = generate.run(engine, pids)
    finally:
        engine.dispose()
    table = Table("Patient", "Entry", "Problem")
    for flag in out.flags[:limit]:
        table.add_row(flag.patient_id, flag.source, flag.message)
    console.print(table)
    console.print(f"{len(out.flags)} problems")
