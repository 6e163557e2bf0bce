"""Load the synthetic population through the FHIR core, as any client would."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine, func, select

from medcard.access.context import AccessContext
from medcard.db.engine import optimize
from medcard.db.tables import resources
from medcard.fhir.local import call


def is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(resources)).scalar_one() == 0


def load_demo(
    engine: Engine,
    patients: int,
    *,
    seed: int = 1,
    console: Console | None = None,
    accounts: bool = True,
) -> int:
    from medcard.demo.population import patient_bundles, reference_bundle

    console = console or Console()
    ctx = AccessContext.system("system:demo", purpose="demo data")
    resp = call(engine, ctx, "POST", "", reference_bundle(seed))
    if resp.status != 200:
        raise RuntimeError(f"reference data failed: {resp.body_bytes()[:500]!r}")
    from medcard.demo.regions import seed_demo_regions

    seed_demo_regions(engine)  # regions 77, 78 and 66, which differ (issue 19)
    written = 0
    columns = (
        TextColumn("Demo patients"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("demo", total=patients)
        for bundle in patient_bundles(patients, seed=seed):
            resp = call(engine, ctx, "POST", "", bundle)
            if resp.status != 200:
                raise RuntimeError(f"demo bundle failed: {resp.body_bytes()[:500]!r}")
            written += len(bundle.get("entry", []))
            progress.advance(task)
    console.print(f"Demo data: {patients} patients, {written} resources.")
    from medcard.billing import generate as billing  # issue 9: OMS service lines

    billed = billing.run(engine, billing.all_patients(engine))
    console.print(f"OMS service lines: {billed.created}, flagged: {len(billed.flags)}.")
    optimize(engine)
    if accounts:  # a sign-in account for every role, linked to the data just loaded
        from medcard.demo.accounts import create_demo_accounts, print_demo_accounts

        print_demo_accounts(create_demo_accounts(engine), console)
    return written
