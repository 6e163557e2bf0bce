"""``python -m bench run --patients N [--db sqlite|postgres|both] [--big-patient 1000] [--quick]``.

For each store: a fresh database, a ``medcard serve`` subprocess (2 workers), the
population ingested in rounds (each round: 4 concurrent HTTP clients, 1 client, and
the in-process pipeline, so every mode sees the store at similar sizes), the big
patient, then latency series, a short py-spy profile of ingest, memory throughout.
Prints one table per store and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console

from bench import data, latency, machine, profiling, report
from bench.ingest import Catalogue, IngestResult, http_ingest, pipeline_in_subprocess, post_bundle
from bench.server import MIB, MemoryWatch, Server
from bench.stores import DEFAULT_PG, Store, fresh_store

console = Console(width=None if sys.stdout.isatty() else 150)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def log(msg: str) -> None:
    console.print(f"[dim]{datetime.now().strftime('%H:%M:%S')}[/dim] {msg}")  # noqa: DTZ005 - local time for humans


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="build a population, measure, print and record the figures")
    run.add_argument(
        "--patients",
        type=int,
        default=None,
        help="patients in the population (default 2000; --quick: 100)",
    )
    run.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    run.add_argument(
        "--big-patient", type=int, default=1000, help="resources of the $everything patient"
    )
    run.add_argument(
        "--quick", action="store_true", help="smoke run: small population, few samples, one round"
    )
    run.add_argument(
        "--samples",
        type=int,
        default=None,
        help="timed requests per latency series (default 300; --quick: 50)",
    )
    run.add_argument(
        "--warmup", type=int, default=None, help="untimed requests before each series (default 30)"
    )
    run.add_argument(
        "--rounds", type=int, default=None, help="ingest rounds (default 3; --quick: 1)"
    )
    run.add_argument(
        "--clients",
        type=int,
        default=4,
        help="concurrent HTTP clients for the concurrent ingest figure",
    )
    run.add_argument(
        "--series-seconds",
        type=float,
        default=90.0,
        help="time budget per latency series; past it a series stops (at >= 30 samples)",
    )
    run.add_argument(
        "--quiet-limit",
        type=float,
        default=0.5,
        help="before each phase, wait until other processes use fewer cores than this",
    )
    run.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        help="total seconds a run may spend waiting for a quiet machine (shared by all phases)",
    )
    run.add_argument("--workers", type=int, default=2, help="uvicorn workers of the server")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument(
        "--pg",
        default=os.environ.get("MEDCARD_BENCH_PG", DEFAULT_PG),
        help="PostgreSQL server (no database name)",
    )
    run.add_argument(
        "--pg-options",
        default="",
        help='A/B runs: libpq options for the server sessions, e.g. "-c plan_cache_mode=force_custom_plan"',
    )
    run.add_argument(
        "--sqlite-analyze",
        action="store_true",
        help="A/B runs: ANALYZE the SQLite store before the latency series (medcard itself never does)",
    )
    run.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip ANALYZE on PostgreSQL before the latency series",
    )
    run.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of ingest")
    run.add_argument(
        "--keep", action="store_true", help="keep the databases and data dirs for inspection"
    )
    run.add_argument(
        "--results", type=Path, default=RESULTS, help="markdown file the run is appended to"
    )
    run.add_argument(
        "--no-results", action="store_true", help="print only; do not touch RESULTS.md"
    )
    pipe = sub.add_parser("pipeline", help="(internal) ingest a range of the spool in-process")
    pipe.add_argument("--spool", type=Path, required=True)
    pipe.add_argument("--data-dir", type=Path, required=True)
    pipe.add_argument("--database-url", default="")
    pipe.add_argument("--start", type=int, required=True)
    pipe.add_argument("--stop", type=int, required=True)
    args = p.parse_args(argv)
    if args.command == "run":
        args.patients = args.patients or (100 if args.quick else 2000)
        args.samples = args.samples or (50 if args.quick else 300)
        args.warmup = args.warmup if args.warmup is not None else (5 if args.quick else 30)
        args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "pipeline":
        from bench.ingest import pipeline_main

        return pipeline_main(args.spool, args.data_dir, args.database_url, args.start, args.stop)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    started = datetime.now(UTC)
    info = machine.describe(args.pg.rstrip("/") + "/postgres" if "postgres" in kinds else None)
    log(f"machine: {machine.one_line(info)}")
    extra = 0 if args.no_profile else min(max(args.patients // 25, 20), 200)
    pop = data.load(args.patients + extra, args.seed, args.big_patient, log=log)
    log(f"population: {args.patients} patients (+{extra} for the profile), "
        f"{sum(m['n'] for m in pop.meta[: args.patients]):,} resources, "
        f"big patient {pop.big_meta['n']} resources")  # fmt: skip
    runs: list[dict[str, Any]] = []
    before = args.results.read_text() if args.results.exists() else PREAMBLE
    for kind in kinds:
        log(f"[bold]== {kind} ==[/bold]")
        outcome = run_store(kind, pop, args, extra)
        runs.append(outcome)
        console.print(
            report.rich_table(
                f"{kind}: {args.patients} patients, {outcome['resources']:,} resources",
                outcome["figures"],
                outcome["noise"],
            )
        )
        if any(v > report.NOISY for v in outcome["noise"].values()):
            console.print(report.NOISE_NOTE)
        for line in outcome["notes"]:
            console.print(f"  {line}")
        if not args.no_results:  # after each store, so a failure later loses nothing
            write_results(args, before, info, pop, runs, started)
            log(f"results appended to {args.results}")
    return 0


def run_store(
    kind: str, pop: data.Population, args: argparse.Namespace, extra: int
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    notes: list[str] = []
    details: dict[str, Any] = {"kind": kind}
    t_start = time.perf_counter()
    quiet(args, [], "")
    with fresh_store(kind, args.pg, keep=args.keep, pg_options=args.pg_options) as store:
        server = Server(store, workers=args.workers)
        server.start()
        try:
            with MemoryWatch(server) as mem:
                server.warm_every_worker()
                time.sleep(1.0)
                idle = server.memory()
                figures["rss_idle"] = idle.total / MIB
                details["idle"] = idle
                log(f"server up on :{server.port}; idle RSS {idle.total / MIB:.0f} MiB "
                    f"(supervisor {idle.supervisor / MIB:.0f}, workers "
                    f"{', '.join(f'{w / MIB:.0f}' for w in idle.workers)})")  # fmt: skip

                cat = Catalogue()
                _post_reference(server, pop)
                results = _ingest_rounds(server, store, pop, args, cat, mem, details)
                figures["ingest4"] = results["x4"].rate
                figures["ingest1"] = results["x1"].rate
                figures["pipeline"] = results["pipeline"].rate
                figures["ingest_ratio"] = (
                    100 * results["x4"].rate / results["pipeline"].rate
                    if results["pipeline"].rate
                    else None
                )
                stored = sum(r.resources for r in results.values())

                mem.phase("big patient")
                big_id = _post_big(server, pop)
                stored += pop.big_meta["n"] if big_id else 0
                details["resources"] = stored
                if (kind == "postgres" and not args.no_analyze) or (
                    kind == "sqlite" and args.sqlite_analyze
                ):
                    _analyze(store)

                time.sleep(2.0)
                after = server.memory()
                figures["rss_idle_after"] = after.total / MIB
                details["idle_after"] = after

                mem.phase("latency")
                sets = latency.query_sets(pop, cat, big_id, args.seed)
                timings = {}
                for qs in sets:
                    quiet(args, _tree(server), store.database_name)
                    before = profiling.cpu_snapshot(_tree(server), store.database_name)
                    t0 = time.perf_counter()
                    t = latency.measure(
                        server, qs, args.samples, args.warmup, log, args.series_seconds
                    )
                    after = profiling.cpu_snapshot(_tree(server), store.database_name)
                    t.others = profiling.others_cores(before, after, time.perf_counter() - t0)
                    timings[qs.name] = t
                    name = "read" if qs.name == "read" else qs.name
                    figures[f"{name}.p50"] = t.p50
                    figures[f"{name}.p95"] = t.p95
                    if t.errors:
                        notes.append(f"{qs.name}: {len(t.errors)} errors, first: {t.errors[0]}")
                count = timings.get("Observation?code=&_summary=count")
                if count:
                    figures["count_rate"] = count.matches_per_second()
                details["timings"] = timings
                details["queries"] = {qs.name: qs.paths[:3] for qs in sets}

                if not args.no_profile and extra:
                    details["profiles"] = _profile(server, store, pop, args, cat, mem, extra)

                peaks = mem.peaks
                worker_peak = max((p.max_worker for p in peaks.values()), default=0)
                figures["rss_worker_peak"] = worker_peak / MIB
                details["peaks"] = {
                    k: (p.total / MIB, p.max_worker / MIB) for k, p in peaks.items()
                }
        finally:
            server.stop()
        details["size_bytes"] = _safe_size(store)
    details["seconds"] = time.perf_counter() - t_start
    noise = {
        f"ingest{k[1:]}" if k.startswith("x") else k: v
        for k, v in details.get("others_ingest", {}).items()
    }
    noise["ingest_ratio"] = max(noise.get("ingest4", 0.0), noise.get("pipeline", 0.0))
    for name, t in details.get("timings", {}).items():
        for q in ("p50", "p95"):
            noise[f"{name}.{q}"] = t.others
        if name == "Observation?code=&_summary=count":
            noise["count_rate"] = t.others
    details["resources"] = details.get("resources", 0)
    for mode, r in details.get("ingest", {}).items():
        if r.errors:
            notes.append(f"ingest {mode}: {len(r.errors)} failed bundles, first: {r.errors[0]}")
    return {"kind": kind, "figures": figures, "notes": notes, "details": details, "noise": noise,
            "resources": details["resources"]}  # fmt: skip


def _safe_size(store: Store) -> int:
    try:
        return store.size_bytes()
    except Exception:  # size is informative only
        return 0


def _post_reference(server: Server, pop: data.Population) -> None:
    with httpx.Client(headers=server.headers, timeout=600) as client:
        resp = post_bundle(client, server.fhir, pop.reference)
    if resp.status_code != 200:
        raise RuntimeError(f"reference bundle failed: HTTP {resp.status_code} {resp.text[:500]}")


def _post_big(server: Server, pop: data.Population) -> str | None:
    with httpx.Client(headers=server.headers, timeout=600) as client:
        t0 = time.perf_counter()
        resp = post_bundle(client, server.fhir, pop.big)
        ms = (time.perf_counter() - t0) * 1000
    if resp.status_code != 200:
        log(f"[red]big patient bundle failed[/red]: HTTP {resp.status_code} {resp.text[:300]}")
        return None
    entries = orjson.loads(resp.content).get("entry", [])
    idx = pop.big_meta["patient"]
    pid = entries[idx]["response"]["location"].split("/")[1] if 0 <= idx < len(entries) else None
    log(f"big patient {pid}: {pop.big_meta['n']} resources in one transaction, {ms:.0f} ms")
    return pid


def _analyze(store: Store) -> None:
    t0 = time.perf_counter()
    if store.kind == "postgres":
        import psycopg

        with psycopg.connect(store.database_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        log(
            f"ANALYZE (what autovacuum does after a bulk load) took {time.perf_counter() - t0:.1f}s"
        )
    else:
        import sqlite3

        conn = sqlite3.connect(store.data_dir / "medcard.sqlite3", timeout=60)
        try:
            conn.execute("ANALYZE")
            conn.commit()
        finally:
            conn.close()
        log(f"SQLite ANALYZE (--sqlite-analyze) took {time.perf_counter() - t0:.1f}s")


def _ingest_rounds(
    server: Server,
    store: Store,
    pop: data.Population,
    args: argparse.Namespace,
    cat: Catalogue,
    mem: MemoryWatch,
    details: dict[str, Any],
) -> dict[str, IngestResult]:
    total = {"x4": IngestResult(f"http x{args.clients}"), "x1": IngestResult("http x1"),
             "pipeline": IngestResult("pipeline")}  # fmt: skip
    cpu: dict[str, float] = {}
    cpu_wall = 0.0
    others: dict[str, list[float]] = {"x1": [], "pipeline": []}
    n = args.patients
    for r in range(args.rounds):
        lo, hi = n * r // args.rounds, n * (r + 1) // args.rounds
        size = hi - lo
        a, b = lo + size * 70 // 100, lo + size * 85 // 100
        quiet(args, _tree(server), store.database_name)
        mem.phase("ingest x4")
        before = profiling.cpu_snapshot(_tree(server), store.database_name)
        res = http_ingest(server, pop, range(lo, a), args.clients, cat)
        after = profiling.cpu_snapshot(_tree(server), store.database_name)
        for k, v in profiling.cpu_split(before, after, res.seconds).items():
            cpu[k] = cpu.get(k, 0.0) + v * res.seconds
        cpu_wall += res.seconds
        total["x4"].merge(res)
        log(
            f"round {r + 1}/{args.rounds}: {args.clients} clients {res.resources:,} res in {res.seconds:.1f}s = {res.rate:,.0f}/s"
        )
        mem.phase("ingest x1")
        before = profiling.cpu_snapshot(_tree(server), store.database_name)
        res = http_ingest(server, pop, range(a, b), 1, cat)
        others["x1"].append(
            profiling.others_cores(
                before, profiling.cpu_snapshot(_tree(server), store.database_name), res.seconds
            )
            * res.seconds
        )
        total["x1"].merge(res)
        log(
            f"round {r + 1}/{args.rounds}: 1 client {res.resources:,} res in {res.seconds:.1f}s = {res.rate:,.0f}/s"
        )
        mem.phase("pipeline")
        before = profiling.cpu_snapshot(_tree(server), store.database_name)
        child_cpu = _children_cpu()
        t_pipe = time.perf_counter()
        res = pipeline_in_subprocess(store, pop, range(b, hi), cat)
        wall = time.perf_counter() - t_pipe
        after = profiling.cpu_snapshot(_tree(server), store.database_name)
        # The pipeline process is not in the server tree: take its CPU out of "others".
        busy = profiling.others_cores(before, after, wall) * wall - (_children_cpu() - child_cpu)
        others["pipeline"].append(busy * res.seconds / wall if wall else 0.0)
        total["pipeline"].merge(res)
        log(
            f"round {r + 1}/{args.rounds}: pipeline {res.resources:,} res in {res.seconds:.1f}s = {res.rate:,.0f}/s"
        )
    details["ingest"] = total
    details["others_ingest"] = {
        "x4": cpu.get("everything else on the machine", 0.0) / cpu_wall if cpu_wall else 0.0,
        "x1": sum(others["x1"]) / (total["x1"].seconds or 1),
        "pipeline": max(0.0, sum(others["pipeline"]) / (total["pipeline"].seconds or 1)),
    }
    details["cpu_ingest4"] = {k: v / cpu_wall for k, v in cpu.items()} if cpu_wall else {}
    if store.kind != "postgres":
        details["cpu_ingest4"].pop("PostgreSQL backends", None)  # none of ours: counted as "else"
    for r in total.values():
        if r.errors:
            log(f"[red]{r.mode}: {len(r.errors)} failed bundles[/red]; first: {r.errors[0]}")
    return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def quiet(args: argparse.Namespace, pids: list[int], database: str) -> None:
    """Wait for other processes to calm down, from the run's shared waiting budget."""
    if args.quiet_wait <= 0:
        return
    t0 = time.monotonic()
    profiling.wait_quiet(pids, database, limit=args.quiet_limit, max_wait=args.quiet_wait, log=log)
    args.quiet_wait -= max(0.0, time.monotonic() - t0 - 3.0)


def _tree(server: Server) -> list[int]:
    from bench.server import _children

    assert server.proc is not None
    return [server.proc.pid, *_children(server.proc.pid)]


def _profile(
    server: Server,
    store: Store,
    pop: data.Population,
    args: argparse.Namespace,
    cat: Catalogue,
    mem: MemoryWatch,
    extra: int,
) -> list[str]:
    """py-spy over HTTP ingest (server workers) and over the in-process pipeline."""
    if profiling.py_spy() is None:
        log("[yellow]py-spy not installed: no profile[/yellow]")
        return []
    out: list[str] = []
    first = range(args.patients, args.patients + extra // 2)
    second = range(args.patients + extra // 2, args.patients + extra)
    with tempfile.TemporaryDirectory(prefix="medcard-bench-prof-") as tmp:
        raw = Path(tmp) / "server.txt"
        mem.phase("profile")
        rec = profiling.Recorder(server.proc.pid, raw, subprocesses=True)  # type: ignore[union-attr]
        time.sleep(1.0)
        res = http_ingest(server, pop, first, args.clients, cat)
        rec.stop()
        title = (f"{store.kind}: server workers during HTTP ingest, {args.clients} clients "
                 f"({res.resources:,} resources, {res.rate:,.0f}/s under py-spy)")  # fmt: skip
        if raw.exists():
            out.append(profiling.fold(raw, title).markdown())
        raw2 = Path(tmp) / "pipeline.txt"
        wrap = profiling.record_command(raw2)
        res = pipeline_in_subprocess(store, pop, second, cat, wrap=wrap)
        title = f"{store.kind}: in-process pipeline ({res.resources:,} resources, {res.rate:,.0f}/s under py-spy)"
        if raw2.exists():
            out.append(profiling.fold(raw2, title, only_under="Pipeline.ingest").markdown())
    log(f"profile recorded ({len(out)} parts)")
    return out


# -- RESULTS.md -------------------------------------------------------------------

PREAMBLE = """# medcard benchmark results

Produced by `python -m bench run` (see bench/README.md); each run is appended below.
Targets are the issue's, defined for PostgreSQL; SQLite rows show the same targets
for reference. "best peer" is the best other FHIR server measured on this machine.
Gap: figure − target, and the figure as a multiple of the target; ✓ met, ✗ missed.
"""


def _fmt_bytes(n: int) -> str:
    return f"{n / MIB:,.0f} MiB"


def write_results(
    args: argparse.Namespace,
    text: str,
    info: dict[str, Any],
    pop: data.Population,
    runs: list[dict[str, Any]],
    started: datetime,
) -> None:
    """``text`` (the file as it was before this run) plus this run's section."""
    path: Path = args.results
    cmd = "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [
        "",
        f"## {started.strftime('%Y-%m-%d %H:%M UTC')} — {args.patients:,} patients{' (quick)' if args.quick else ''}",
        "",
        f"- command: `{cmd}`",
        f"- machine: {machine.one_line(info)}",
        f"- population: {args.patients:,} patients, {sum(m['n'] for m in pop.meta[: args.patients]):,} resources "
        f"in transaction Bundles (mean {sum(m['n'] for m in pop.meta[: args.patients]) / max(args.patients, 1):.0f} per patient), "
        f"plus reference data and one patient with {pop.big_meta['n']} resources; "
        f"generated in {pop.generate_seconds:.0f}s",
        f"- server: `medcard serve --workers {args.workers}`"
        + (f" with PostgreSQL session options `{args.pg_options}`" if args.pg_options else "")
        + (" (SQLite store ANALYZEd before the latency series)" if args.sqlite_analyze else "")
        + "; latency:"
        f" {args.samples} timed requests per series "
        f"after {args.warmup} warm-up, sequential, one keep-alive connection; ingest in {args.rounds} rounds "
        f"(70% {args.clients} clients / 15% 1 client / 15% pipeline each)",
    ]
    for run in runs:
        d = run["details"]
        lines += ["", f"### {run['kind']}", ""]
        lines.append(
            f"Stored {d['resources']:,} resources; store size {_fmt_bytes(d.get('size_bytes', 0))}; "
            f"run took {d['seconds'] / 60:.1f} min."
        )
        lines += ["", report.markdown_table(run["figures"], run["noise"]), ""]
        lines.append("Ingest detail:")
        lines.append("")
        for key, r in d.get("ingest", {}).items():
            ms = sorted(r.bundle_ms)
            p50 = latency.percentile(ms, 0.5)
            busy = d.get("others_ingest", {}).get(key)
            noise = f"; other processes used {busy:.2f} cores meanwhile" if busy is not None else ""
            lines.append(
                f"- {r.mode}: {r.bundles:,} Bundles, {r.resources:,} resources in {r.seconds:.1f}s "
                f"= {r.rate:,.0f} res/s; Bundle latency p50 {p50:.0f} ms; failed {len(r.errors)}{noise}"
            )
        if d.get("cpu_ingest4"):
            split = ", ".join(f"{k} {v:.2f}" for k, v in d["cpu_ingest4"].items())
            lines.append(
                f"- CPU during {args.clients}-client ingest (cores busy, of {info['nproc']}): {split}"
            )
        idle, after = d.get("idle"), d.get("idle_after")
        if idle:
            text_idle = f"- RSS idle at start: supervisor {idle.supervisor / MIB:.0f} MiB, workers "
            text_idle += ", ".join(f"{w / MIB:.0f}" for w in idle.workers) + " MiB"
            if after:
                text_idle += f"; after the run: supervisor {after.supervisor / MIB:.0f}, workers "
                text_idle += ", ".join(f"{w / MIB:.0f}" for w in after.workers) + " MiB"
            lines.append(text_idle)
        if d.get("peaks"):
            peaks = "; ".join(
                f"{k}: total {t:.0f}, worker {w:.0f}" for k, (t, w) in d["peaks"].items()
            )
            lines.append(f"- RSS peaks by phase (MiB): {peaks}")
        lines += ["", "Latency series (mean entries returned; `_summary=count`: mean total):", ""]
        for name, t in d.get("timings", {}).items():
            example = (d.get("queries", {}).get(name) or [""])[0]
            capped = " (stopped by the time budget)" if t.capped else ""
            lines.append(
                f"- {name}: p50 {t.p50:.2f} ms, p95 {t.p95:.2f} ms, n={len(t.ms)}{capped}, "
                f"size {t.mean_size:,.0f}, other processes {t.others:.2f} cores, e.g. `{example}`"
            )
        for note in run["notes"]:
            lines.append(f"- note: {note}")
        for prof in d.get("profiles", []):
            lines += ["", prof]
    path.write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
