"""Time to build an extract of a whole card (~1,000 entries): PDF, Bundle and storage.

A fresh store gets the reference data, a few ordinary demo patients and one big patient
(``patient_bundle_with_resources``); the extract job's own function then builds the
whole-card extract several times, and the PDF rendering alone is timed too.  Target:
≤ 5 s for the whole card.

    python bench/extract_pdf.py [--db sqlite|postgres|both] [--entries 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stores import DEFAULT_PG, fresh_store


def _setup(store: Any, entries: int) -> tuple[Any, str]:
    import orjson
    from rich.console import Console

    from medcard.access.context import AccessContext
    from medcard.db.engine import make_engine, optimize
    from medcard.demo.loader import load_demo
    from medcard.demo.population import patient_bundle_with_resources
    from medcard.fhir.local import call

    engine = make_engine(store.settings())
    load_demo(engine, 3, console=Console(file=io.StringIO()), accounts=False)
    ctx = AccessContext.system("system:bench", purpose="bench data")
    resp = call(engine, ctx, "POST", "", patient_bundle_with_resources(entries, seed=7))
    if resp.status != 200:
        raise RuntimeError(resp.body_bytes()[:300])
    locations = [e["response"]["location"] for e in orjson.loads(resp.body_bytes())["entry"]]
    pid = next(loc.split("/")[1] for loc in locations if loc.startswith("Patient/"))
    optimize(engine)
    return engine, pid


def run(db: str, pg: str, entries: int, rounds: int) -> float:
    import datetime as dt

    from medcard.auth.tokens import load_or_create_key
    from medcard.extracts import jobs, model, services
    from medcard.extracts.render import Extract, render_pdf, select
    from medcard.fhir.store.repository import Repository
    from medcard.records import SECTIONS, load_card

    with fresh_store(db, pg) as store:
        engine, pid = _setup(store, entries)
        key = load_or_create_key(store.settings().signing_key_path)
        everything = [s.key for s in SECTIONS]
        builds, renders = [], []
        pdf_size = pages = listed = 0
        for _ in range(rounds):
            repo = Repository(engine, jobs.acting_for(pid))
            req = services.parse_request(everything, "", "", "ru", dt.date.today())  # noqa: DTZ011
            with repo.unit_of_work():
                doc = services.new_document(
                    pid, req, services.verification.new_code(), services._now()
                )
                doc_id = repo.create(doc).stored.id
            repo.close()
            t0 = time.perf_counter()
            jobs.build(
                engine, key, doc_id=doc_id, patient_id=pid, base_url="https://medcard.example"
            )
            builds.append(time.perf_counter() - t0)

            repo = Repository(engine, jobs.acting_for(pid))
            card = load_card(repo, pid)
            item = model.info(repo.read("DocumentReference", doc_id).json())
            repo.close()
            assert item.state == model.READY, item
            sections = select(card, everything, services.Period())
            listed = sum(1 + len(e.children) for _, es in sections for e in es)
            extract = Extract(
                item.code, dt.datetime.now(dt.UTC), "ru", "https://medcard.example",
                "medcard", card.patient, services.Period(), sections,
            )  # fmt: skip
            t0 = time.perf_counter()
            pdf = render_pdf(extract)
            renders.append(time.perf_counter() - t0)
            pdf_size = len(pdf)
            pages = pdf.count(b"/Type /Page\n") or pdf.count(b"/Type /Page")
        engine.dispose()
    best = min(builds)
    print(
        f"{db:<9} entries in the extract {listed:>5}  PDF {pdf_size / 1024:>6.0f} KiB, ~{pages} pages\n"
        f"          whole job (read card, PDF, Bundle, sign, store): "
        f"best {best:.2f} s, median {statistics.median(builds):.2f} s  (target ≤ 5 s)\n"
        f"          PDF rendering alone: best {min(renders):.2f} s, "
        f"median {statistics.median(renders):.2f} s"
    )
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    ap.add_argument("--pg", default=DEFAULT_PG)
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    worst = 0.0
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        worst = max(worst, run(db, args.pg, args.entries, args.rounds))
    return 0 if worst <= 5.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
