"""``medcard backup FILE`` and ``medcard restore FILE`` (see medcard/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def backup_command(
    target: Annotated[Path, typer.Argument(help="New file to write the backup to")],
) -> None:
    """Back up the whole store while the server runs (SQLite online backup, or pg_dump)."""
    from medcard.backup import BackupError, backup
    from medcard.config import Settings
    from medcard.db.engine import make_engine

    engine = make_engine(Settings())
    try:
        got = backup(engine, target)
    except BackupError as exc:
        console.print(f"[red]Backup failed:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    size = target.stat().st_size
    console.print(f"[green]Backup written[/green] to {target} ({size:,} bytes): {got}")


def restore_command(
    source: Annotated[Path, typer.Argument(help="A file written by medcard backup")],
    force: Annotated[
        bool, typer.Option(help="Replace a store that already holds resources")
    ] = False,
) -> None:
    """Restore a backup into an empty store (stop the server first)."""
    from medcard.backup import BackupError, restore
    from medcard.config import Settings
    from medcard.db.engine import make_engine

    engine = make_engine(Settings())
    try:
        got = restore(engine, source, force=force)
    except BackupError as exc:
        console.print(f"[red]Restore failed:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(f"[green]Restored[/green] {source}: {got}")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
