"""``medcard terminology``: which НСИ dictionary versions are in use, and loading a newer one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Reference dictionaries (НСИ): show versions, load a newer МКБ-10.")
console = Console()


@app.command("show")
def show() -> None:
    """The МКБ-10 version the server uses: OID, version, source, number of codes."""
    from medcard.config import Settings
    from medcard.terminology.nsi import load_current_mkb10

    d = load_current_mkb10(Settings().data_dir)
    v = d.version
    console.print(f"МКБ-10 {v.oid} версия {v.version}: {len(d.entries):,} записей; {v.source}")


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="НСИ export named <OID>_<version>.csv")],
) -> None:
    """Check an НСИ МКБ-10 CSV export and keep it; the newest version is used after a restart."""
    from medcard.config import Settings
    from medcard.terminology.nsi import DictionaryFileError, install_mkb10, load_current_mkb10

    settings = Settings()
    try:
        loaded = install_mkb10(file, settings.data_dir)
    except (DictionaryFileError, OSError, ValueError) as exc:
        console.print(f"[red]Не загружено:[/red] {exc}")
        raise typer.Exit(1) from None
    current = load_current_mkb10(settings.data_dir).version
    console.print(
        f"[green]Загружено[/green] МКБ-10 версии {loaded.version.version} "
        f"({len(loaded.entries):,} записей); используется версия {current.version}"
    )
