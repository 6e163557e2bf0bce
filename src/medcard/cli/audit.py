"""``medcard audit``: seal the hash chain, verify it, export entries as AuditEvent NDJSON.

Messages go to stderr; what scripts read goes to stdout (``head=SEQ:HASH`` from
verify, the exported entries from export).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from medcard.cli.store import open_store

if TYPE_CHECKING:
    pass

app = typer.Typer(help="Audit log: tamper-evident chain and exports.", no_args_is_help=True)
console = Console(stderr=True)


_engine = open_store


@app.command()
def seal() -> None:
    """Link every unsealed entry into the hash chain (requests do this as they go)."""
    from medcard.audit import chain

    with _engine() as engine:
        n = chain.seal_all(engine)
    console.print(f"sealed {n} entries")


@app.command()
def verify(
    expect: Annotated[
        str | None,
        typer.Option(help="A head printed earlier (SEQ:HASH) that must still be in the chain"),
    ] = None,
) -> None:
    """Recompute the chain; report the first broken link (exit 1) or the head to record."""
    from medcard.audit import chain

    try:
        anchor = chain.parse_anchor(expect) if expect else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expect") from None
    with _engine() as engine:
        verdict = chain.verify(engine, expect=anchor)
    if verdict.ok:
        console.print(
            f"[green]chain intact[/green]: {verdict.checked} sealed entries, "
            f"{verdict.unsealed} not yet sealed"
        )
        console.print("head (record it elsewhere; check later with --expect):")
        print(f"head={verdict.head}")
        return
    console.print(f"[red]chain broken[/red] after {verdict.checked} good entries")
    console.print(verdict.problem, soft_wrap=True)
    print(f"broken_seq={verdict.broken_seq or ''}")
    raise typer.Exit(1)


@app.command()
def export(
    patient: Annotated[str | None, typer.Option(help="Only entries about this Patient id")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this date (DD.MM.YYYY or YYYY-MM-DD, Moscow time)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to and including this date (DD.MM.YYYY or YYYY-MM-DD)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only entries by this actor")] = None,
    fmt: Annotated[str, typer.Option("--format", help="ndjson (AuditEvent) or csv")] = "ndjson",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")
    ] = None,
) -> None:
    """Write audit entries as FHIR AuditEvent NDJSON (or CSV), oldest first."""
    from medcard.access.context import AccessContext
    from medcard.audit import reports
    from medcard.audit.recorder import AuditBuffer

    if fmt not in ("ndjson", "csv"):
        raise typer.BadParameter("ndjson or csv", param_hint="--format")
    if not (patient or since or actor):
        raise typer.BadParameter("give --patient, --since or --actor", param_hint="--patient")
    try:
        low, high = reports.period(since or "", until or "", reports.moscow())
    except ValueError:
        raise typer.BadParameter(
            "dates are DD.MM.YYYY or YYYY-MM-DD", param_hint="--since"
        ) from None
    flt = reports.AuditFilter(
        patient_ids=frozenset({patient.removeprefix("Patient/")}) if patient else frozenset(),
        actors=frozenset({actor}) if actor else frozenset(),
        since=low,
        until=high,
    )
    lines = reports.ndjson_lines if fmt == "ndjson" else reports.csv_lines
    with _engine() as engine:
        out = output.open("wb") if output else sys.stdout.buffer
        written = 0
        try:
            for line in lines(reports.stream(engine, flt)):
                out.write(line)
                written += 1
        finally:
            if output:
                out.close()
            else:
                out.flush()
        # Reading who accessed a card is itself an access worth recording.
        buffer = AuditBuffer(AccessContext.system("system:cli"))
        buffer.add(
            "audit-export",
            "AuditEvent",
            patient_id=patient or "",
            detail=f"{fmt} export: patient={patient or '*'} since={since or '-'} "
            f"until={until or '-'} actor={actor or '*'}",
        )
        buffer.flush_separately(engine)
    count = written - (1 if fmt == "csv" else 0)
    console.print(f"exported {count} entries" + (f" to {output}" if output else ""))
