"""The first searches after a load, on a store that nobody has analysed (issue 13).

One patient, 1,000 Observations posted as ten transaction Bundles through the FHIR core
(in-process: planning is what is measured, not HTTP), then at once the patient-scoped
search of the issue, 30 times.  Run twice, on fresh PostgreSQL databases: with the
store's own statistics refresh (``medcard.db.statistics``) off and on; prints p50/p95
and the plan (EXPLAIN (ANALYZE, BUFFERS)) of the first search of each run.

    python -m bench.cold_plan [--pg postgresql://postgres@127.0.0.1:5432] [--results]
"""

from __future__ import annotations

import argparse
import os
import statistics as stats
import time
from typing import Any

import orjson

from bench.stores import DEFAULT_PG, fresh_store

CODE = "http://loinc.org|718-7"
QUERY = f"Observation?patient={{pid}}&code={CODE}&_sort=-date&_count=50"


def _observation(pid: str, i: int) -> dict[str, Any]:
    code = "718-7" if i % 4 == 0 else ("2345-7", "8867-4", "8480-6")[i % 3]
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00+03:00",
        "valueQuantity": {"value": 100 + i % 50, "unit": "g/L"},
    }


def run_once(pg: str, fresh: bool) -> dict[str, Any]:
    from sqlalchemy import text

    from medcard.access.context import AccessContext
    from medcard.db.engine import make_engine
    from medcard.fhir.local import call

    os.environ["MEDCARD_FRESH_STATISTICS"] = "1" if fresh else "0"
    ctx = AccessContext.system("system:bench")
    with fresh_store("postgres", pg) as store:
        engine = make_engine(store.settings())
        try:
            patient = {"resourceType": "Patient", "name": [{"family": "Холодов"}]}
            made = call(engine, ctx, "POST", "Patient", patient)
            pid = orjson.loads(made.body_bytes())["id"]
            started = time.perf_counter()
            for b in range(10):
                entries = [
                    {
                        "resource": _observation(pid, b * 100 + i),
                        "request": {"method": "POST", "url": "Observation"},
                    }
                    for i in range(100)
                ]
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
                resp = call(engine, ctx, "POST", "", bundle)
                assert resp.status == 200, resp.body_bytes()[:300]
            load_s = time.perf_counter() - started
            plan = _explain(engine, ctx, pid)
            times = []
            for _ in range(30):
                t0 = time.perf_counter()
                resp = call(engine, ctx, "GET", QUERY.format(pid=pid))
                times.append((time.perf_counter() - t0) * 1000)
                assert resp.status == 200
            with engine.connect() as conn:
                analysed = conn.execute(
                    text("SELECT sum(analyze_count) FROM pg_stat_user_tables")
                ).scalar()
            return {
                "fresh": fresh,
                "load_s": load_s,
                "first_ms": times[0],
                "p50_ms": stats.median(times),
                "p95_ms": sorted(times)[int(len(times) * 0.95) - 1],
                "analyses": int(analysed or 0),
                "plan": plan,
            }
        finally:
            engine.dispose()


def _explain(engine: Any, ctx: Any, pid: str) -> str:
    """The plan PostgreSQL makes for the search's SQL, as the store runs it."""
    from sqlalchemy import event

    from medcard.fhir.search.params import parse
    from medcard.fhir.store.repository import Repository

    captured: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "sp_token" in statement and not captured:
            captured.append((statement, params))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        query = [("patient", pid), ("code", CODE), ("_sort", "-date"), ("_count", "50")]
        repo = Repository(engine, ctx)
        repo.search(parse("Observation", query))
        repo.close()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    if not captured:
        return "(no statement captured)"
    statement, params = captured[0]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
        return "\n".join(row[0] for row in cur.fetchall())
    finally:
        raw.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default=os.environ.get("MEDCARD_BENCH_PG", DEFAULT_PG))
    ap.add_argument("--results", action="store_true", help="append to bench/RESULTS.md")
    args = ap.parse_args()
    rows = [run_once(args.pg, fresh) for fresh in (False, True)]
    lines = [
        "| statistics refresh | load (10 Bundles) | first search | p50 | p95 | ANALYZE runs |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {'on' if r['fresh'] else 'off'} | {r['load_s']:.1f} s | {r['first_ms']:.1f} ms"
            f" | {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms | {r['analyses']} |"
        )
    table = "\n".join(lines)
    print(table)
    for r in rows:
        print(
            f"\n-- plan with the statistics refresh {'on' if r['fresh'] else 'off'}:\n{r['plan']}"
        )
    if args.results:
        from pathlib import Path

        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        plans = "\n\n".join(
            f"Refresh {'on' if r['fresh'] else 'off'}:\n\n```\n{r['plan']}\n```" for r in rows
        )
        text = (
            f"\n## Cold plans after a load (bench/cold_plan.py, {when}, PostgreSQL)\n\n"
            "One patient, 1,000 Observations in ten transaction Bundles (in-process), then at\n"
            f"once `{QUERY.format(pid='{id}')}` 30 times.\n\n{table}\n\n{plans}\n"
        )
        with Path(__file__).with_name("RESULTS.md").open("a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
