"""Load: demo data in a fresh store, a server, locust as a subprocess, memory sampled.

Figures: throughput, p50/p95/p99 per endpoint group (locust's CSV), the error count,
and the server's memory (RSS of its process tree) every few seconds, so growth shows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from reliability.procs import PrivatePostgres, Server, migrate
from rich.console import Console

HERE = Path(__file__).parent
MIB = 1024 * 1024


@dataclass
class GroupStats:
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


@dataclass
class LoadReport:
    backend: str
    users: int
    seconds: float
    groups: list[GroupStats] = field(default_factory=list)
    total: GroupStats | None = None
    memory: list[tuple[float, int]] = field(default_factory=list)  # (seconds, RSS bytes)
    failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.total.failures if self.total else -1

    def memory_growth(self) -> tuple[float, float]:
        """Median RSS (MiB) of the second quarter and of the last quarter of the run:
        the first quarter is warm-up (caches, pools, imports)."""
        if len(self.memory) < 8:
            return 0.0, 0.0
        n = len(self.memory)
        early = sorted(m for _t, m in self.memory[n // 4 : n // 2])
        late = sorted(m for _t, m in self.memory[3 * n // 4 :])
        return early[len(early) // 2] / MIB, late[len(late) // 2] / MIB

    def summary(self) -> str:
        t = self.total
        early, late = self.memory_growth()
        base = f"{self.backend}, {self.users} users, {self.seconds:.0f} s"
        if t is None:
            return base + ": no figures"
        return (
            f"{base}: {t.requests} requests, {t.rps:.1f}/s, p50 {t.p50:.0f} ms, "
            f"p95 {t.p95:.0f} ms, p99 {t.p99:.0f} ms, {t.failures} errors; "
            f"memory {early:.0f} -> {late:.0f} MiB"
        )


def _rss_tree(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _fixture(base: str, data_dir: Path, engine: Any) -> dict[str, Any]:
    """Ids and tokens for the users: demo patients, the demo clinicians' own patients."""
    from sqlalchemy import select

    from medcard.access.roles import Role
    from medcard.access.subjects import token_claims
    from medcard.auth.tokens import TokenIssuer, load_or_create_key
    from medcard.db.tables import resources

    issuer = TokenIssuer(load_or_create_key(data_dir / "signing-key.json"), "medcard")
    week = 7 * 24 * 3600
    with engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.resource_type, resources.c.id, resources.c.content).where(
                resources.c.resource_type.in_(["Patient", "PractitionerRole"]),
                resources.c.deleted.is_(False),
            )
        ).all()
    patients, families, practitioners = [], set(), set()
    for rtype, rid, content in rows:
        doc = json.loads(content)
        if rtype == "Patient":
            patients.append(rid)
            for name in doc.get("name", []):
                if name.get("family"):
                    families.add(name["family"])
        elif doc.get("practitioner", {}).get("reference", "").startswith("Practitioner/"):
            practitioners.add(doc["practitioner"]["reference"])
    system = issuer.mint("system:load", "system/*.*", lifetime=week)
    clinicians = []
    with httpx.Client(timeout=60) as http:
        for ref in sorted(practitioners):
            claims = token_claims(engine, Role.PRACTITIONER, ref)
            tok = issuer.mint(ref, "user/*.cruds", lifetime=week, extra=claims)
            r = http.get(
                f"{base}/fhir/Patient", params={"_count": "200", "_elements": "id"},
                headers={"Authorization": f"Bearer {tok}"},
            )  # fmt: skip
            visible = [e["resource"]["id"] for e in r.json().get("entry", [])]
            if visible:
                clinicians.append({"ref": ref, "token": tok, "patients": visible})
    return {
        "system_token": system,
        "patients": [
            {
                "id": pid,
                "token": issuer.mint(
                    f"Patient/{pid}", "patient/*.cruds", patient=pid, lifetime=week
                ),
            }
            for pid in patients
        ],
        "clinicians": clinicians,
        "families": sorted(families)[:200],
    }


def _parse_stats(path: Path) -> tuple[list[GroupStats], GroupStats | None]:
    groups, total = [], None
    with path.open() as f:
        for row in csv.DictReader(f):
            stat = GroupStats(
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                rps=float(row["Requests/s"]),
                p50=float(row["50%"] or 0),
                p95=float(row["95%"] or 0),
                p99=float(row["99%"] or 0),
            )
            if row["Name"] == "Aggregated":
                total = stat
            else:
                groups.append(stat)
    return groups, total


def run_load(
    backend: str,
    work_dir: Path,
    *,
    users: int = 50,
    seconds: int = 120,
    patients: int = 30,
    workers: int = 1,
    console: Console | None = None,
) -> LoadReport:
    from medcard.config import Settings
    from medcard.db.engine import make_engine
    from medcard.demo.loader import load_demo

    console = console or Console(file=io.StringIO())
    report = LoadReport(backend, users, seconds)
    work_dir.mkdir(parents=True, exist_ok=True)
    pg: PrivatePostgres | None = None
    if backend == "postgresql":
        pg = PrivatePostgres().init()
        url = pg.create_database("medcard")
    else:
        url = f"sqlite:///{work_dir / 'medcard.sqlite3'}"
    # Keep-alive longer than any think time: a server closing an idle connection just as
    # the client reuses it resets that request (seen: 1 in 3,000 at uvicorn's default 5 s,
    # with think times up to 5 s).  Behind a proxy the same rule holds for the proxy.
    server = Server(work_dir, url, workers=workers, keep_alive=75)
    try:
        migrate(url, work_dir)
        engine = make_engine(Settings(data_dir=work_dir, database_url=url))
        load_demo(engine, patients, console=console, accounts=False)
        server.start()
        fixture = _fixture(server.base, work_dir, engine)
        engine.dispose()
        if not fixture["clinicians"]:
            report.problems.append("no demo clinician sees any patient")
        fixture_path = work_dir / "load-fixture.json"
        fixture_path.write_text(json.dumps(fixture))
        stop = threading.Event()
        began = time.monotonic()

        def sample() -> None:
            while not stop.is_set():
                report.memory.append((time.monotonic() - began, _rss_tree(server.pid)))
                stop.wait(2.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        prefix = work_dir / "locust"
        env = {**os.environ, "MEDCARD_LOAD_FIXTURE": str(fixture_path), "PYTHONWARNINGS": "ignore"}
        cmd = [str(Path(sys.executable).with_name("locust")), "-f", str(HERE / "locustfile.py"),
               "--headless", "-u", str(users), "-r", str(max(1, users // 10)), "-t", f"{seconds}s",
               "--host", server.base, "--csv", str(prefix), "--only-summary", "--stop-timeout", "10",
               "--exit-code-on-error", "0", "--loglevel", "WARNING"]  # fmt: skip
        done = subprocess.run(  # noqa: S603 - our locust, our arguments
            cmd, env=env, capture_output=True, text=True, timeout=seconds + 300, check=False
        )
        stop.set()
        sampler.join(timeout=10)
        if done.returncode != 0:
            report.problems.append(f"locust exited {done.returncode}: {done.stderr[-2000:]}")
        report.groups, report.total = _parse_stats(Path(f"{prefix}_stats.csv"))
        failures = Path(f"{prefix}_failures.csv")
        if failures.exists():
            report.failures = failures.read_text().splitlines()[1:20]
        escaped = server.log_tail(10**9).count("Exception in ASGI application")
        if escaped:
            report.problems.append(f"{escaped} errors escaped the application (server log)")
    finally:
        server.kill()
        if pg is not None:
            pg.destroy()
    return report


def as_dict(report: LoadReport) -> dict[str, Any]:
    early, late = report.memory_growth()
    return {
        "backend": report.backend,
        "users": report.users,
        "seconds": report.seconds,
        "total": report.total.__dict__ if report.total else None,
        "groups": [g.__dict__ for g in report.groups],
        "memory_mib": [(round(t), round(m / MIB, 1)) for t, m in report.memory],
        "memory_early_late_mib": (round(early, 1), round(late, 1)),
        "failures": report.failures,
        "problems": report.problems,
    }
