"""Server time of the patient portal's card pages for a patient with ~1,000 entries.

    python -m bench.portal_pages --db postgres --entries 1000 --samples 60
    python -m bench.portal_pages --db sqlite

A fresh store gets the reference data, ``--others`` ordinary demo patients and one big
patient (``patient_bundle_with_resources``); a patient account is linked to the big one
and signed in.  Each page is requested ``--warmup`` times untimed, then ``--samples``
times in-process (Starlette's test transport: the whole page handler, gate, audit and
template, without a network hop).  Prints p50/p95 per page in milliseconds; the target
is p95 <= 150 ms on PostgreSQL.
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Any

from bench.latency import percentile
from bench.stores import DEFAULT_PG, fresh_store


def _setup(store: Any, entries: int, others: int) -> tuple[Any, str, str]:
    from rich.console import Console

    from medcard.access.context import AccessContext
    from medcard.auth import accounts
    from medcard.auth.sessions import create_session
    from medcard.db.engine import make_engine, optimize
    from medcard.demo.loader import load_demo
    from medcard.demo.population import patient_bundle_with_resources
    from medcard.fhir.local import call

    engine = make_engine(store.settings())
    load_demo(engine, others, console=Console(file=io.StringIO()), accounts=False)
    ctx = AccessContext.system("system:bench", purpose="bench data")
    resp = call(engine, ctx, "POST", "", patient_bundle_with_resources(entries, seed=7))
    if resp.status != 200:
        raise RuntimeError(resp.body_bytes()[:300])
    import orjson

    locations = [e["response"]["location"] for e in orjson.loads(resp.body_bytes())["entry"]]
    pid = next(loc.split("/")[1] for loc in locations if loc.startswith("Patient/"))
    optimize(engine)
    account = accounts.create_account(
        engine, "bench-patient@medcard.example", "bench password 123", accounts.Role.PATIENT,
        fhir_ref=f"Patient/{pid}",
    )  # fmt: skip
    cookie, _ = create_session(engine, account.id, mfa_ok=True)
    return engine, pid, cookie


def run(db: str, pg: str, entries: int, others: int, samples: int, warmup: int) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from medcard.auth.sessions import COOKIE_NAME
    from medcard.db.tables import resources
    from medcard.records.sections import SECTIONS
    from medcard.web.app import create_app

    with fresh_store(db, pg) as store:
        started = time.perf_counter()
        engine, pid, cookie = _setup(store, entries, others)
        with engine.connect() as conn:
            n = conn.execute(select(resources.c.id).where(resources.c.patient_id == pid)).all()
            obs = (
                conn.execute(
                    select(resources.c.id).where(
                        resources.c.patient_id == pid, resources.c.resource_type == "Observation"
                    )
                )
                .scalars()
                .first()
            )
        print(f"{db}: patient {pid} with {len(n)} resources, set up in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        app = create_app(store.settings(), engine)
        web = TestClient(app, base_url="http://testserver", follow_redirects=False)
        web.cookies.set(COOKIE_NAME, cookie)
        base = f"/card/{pid}"
        pages = [("overview", base)]
        pages += [(s.key, f"{base}/{s.key}") for s in SECTIONS]
        pages += [
            ("timeline", f"{base}/timeline"),
            ("timeline?q=", f"{base}/timeline?q=анализ+крови&from=2020-01-01"),
            ("entry", f"{base}/entry/Observation/{obs}"),
            ("trend", f"{base}/labs/trend/718-7"),
            ("access-log", f"{base}/access-log"),
        ]
        print(f"{'page':<16}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  status")
        worst = 0.0
        for name, url in pages:
            statuses = set()
            for _ in range(warmup):
                web.get(url)
            times = []
            for _ in range(samples):
                t0 = time.perf_counter()
                r = web.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                statuses.add(r.status_code)
            p95 = percentile(times, 0.95)
            worst = max(worst, p95)
            print(f"{name:<16}{percentile(times, 0.5):>9.1f}{p95:>9.1f}{max(times):>9.1f}  "
                  f"{','.join(map(str, sorted(statuses)))}")  # fmt: skip
        print(f"worst p95: {worst:.1f} ms (target 150 ms)")
        web.close()
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--pg", default=DEFAULT_PG)
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--others", type=int, default=20)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args(argv)
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        run(db, args.pg, args.entries, args.others, args.samples, args.warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
