"""Database faults under load: PostgreSQL restarted, or down for a while.

A server runs on a private PostgreSQL while client threads read, search and write.
The database is then restarted (fast shutdown, start) and, separately, stopped
(immediate) for a few seconds and started again.  What must hold:

* no 500: while the database is away every request is answered 503 with an
  OperationOutcome (and ``Retry-After``), quickly: nobody waits for a dead database;
* ``/readyz`` says 503 while the database is away and 200 once it is back;
* the service recovers by itself: within 5 s of the database accepting connections
  again, requests succeed (measured from ``pg_ctl start`` returning to the first
  success after which no request failed).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from reliability.procs import PrivatePostgres, Server, migrate, system_token

FHIR = "application/fhir+json"


@dataclass
class Sample:
    began: float
    ended: float
    status: int  # 0: no HTTP answer at all
    outcome: bool  # the body was an OperationOutcome
    what: str


@dataclass
class FaultPhase:
    name: str
    down_at: float = 0.0
    back_at: float = 0.0  # the database accepts connections again
    recovered_at: float = 0.0  # first success after which nothing failed
    readyz_down: bool = False
    readyz_back_seconds: float = 0.0

    @property
    def recovery_seconds(self) -> float:
        return max(0.0, self.recovered_at - self.back_at)


@dataclass
class FaultReport:
    phases: list[FaultPhase] = field(default_factory=list)
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    slowest_503: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rec = ", ".join(f"{p.name} {p.recovery_seconds:.2f} s" for p in self.phases)
        return (
            f"{self.requests} requests under load, statuses {dict(sorted(self.by_status.items()))}; "
            f"slowest 503 {self.slowest_503:.2f} s; recovery after the database came back: {rec}; "
            f"{len(self.problems)} problems"
        )


class _Load:
    def __init__(self, base: str, token: str, threads: int) -> None:
        self.base = base
        self.token = token
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.patient_id = ""
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def seed(self) -> None:
        with httpx.Client(headers=self._headers(), timeout=30) as http:
            r = http.post(
                self.base + "/fhir/Patient",
                content=orjson.dumps(
                    {"resourceType": "Patient", "name": [{"family": "Нагрузка"}], "gender": "male"}
                ),
            )
            r.raise_for_status()
            self.patient_id = r.json()["id"]

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": FHIR, "Accept": FHIR}

    def _run(self, n: int) -> None:
        rnd = random.Random(n)  # noqa: S311 - workload mix
        with httpx.Client(headers=self._headers(), timeout=httpx.Timeout(30, connect=2)) as http:
            while not self.stop.is_set():
                what, method, url, body = self._pick(rnd)
                began = time.monotonic()
                try:
                    r = http.request(method, self.base + url, content=body)
                    status = r.status_code
                    outcome = r.headers.get("content-type", "").startswith(FHIR) and (
                        b'"OperationOutcome"' in r.content[:200]
                    )
                except httpx.TransportError:
                    status, outcome = 0, False
                with self.lock:
                    self.samples.append(Sample(began, time.monotonic(), status, outcome, what))
                time.sleep(0.01)

    def _pick(self, rnd: random.Random) -> tuple[str, str, str, bytes | None]:
        roll = rnd.random()
        if roll < 0.4:
            return "read", "GET", f"/fhir/Patient/{self.patient_id}", None
        if roll < 0.7:
            return "search", "GET", f"/fhir/Observation?subject=Patient/{self.patient_id}", None
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{self.patient_id}"},
            "valueQuantity": {"value": 70, "unit": "/min"},
        }
        return "write", "POST", "/fhir/Observation", orjson.dumps(obs)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def _readyz(base: str) -> int:
    try:
        return httpx.get(base + "/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _wait_ready(base: str, since: float, timeout: float = 30) -> float:
    while time.monotonic() - since < timeout:
        if _readyz(base) == 200:
            return time.monotonic() - since
        time.sleep(0.05)
    return float("inf")


def run_db_faults(work_dir: Path, *, outage_seconds: float = 4.0, threads: int = 6) -> FaultReport:
    report = FaultReport()
    work_dir.mkdir(parents=True, exist_ok=True)
    with PrivatePostgres() as pg:
        url = pg.create_database("medcard")
        migrate(url, work_dir)
        server = Server(work_dir, url)
        server.start()
        load = _Load(server.base, system_token(work_dir), threads)
        try:
            load.seed()
            load.start()
            time.sleep(2)

            # 1. a restart: fast shutdown, then start at once
            restart = FaultPhase("restart")
            restart.down_at = time.monotonic()
            pg.stop("fast")
            restart.readyz_down = _readyz(server.base) == 503
            time.sleep(1.0)
            pg.start()
            restart.back_at = time.monotonic()
            restart.readyz_back_seconds = _wait_ready(server.base, restart.back_at)
            report.phases.append(restart)
            time.sleep(6)

            # 2. unreachable for a while: an immediate stop (a crash), start later
            outage = FaultPhase("outage")
            outage.down_at = time.monotonic()
            pg.stop("immediate")
            time.sleep(0.5)
            outage.readyz_down = _readyz(server.base) == 503
            time.sleep(outage_seconds)
            pg.start()
            outage.back_at = time.monotonic()
            outage.readyz_back_seconds = _wait_ready(server.base, outage.back_at)
            report.phases.append(outage)
            time.sleep(6)
        finally:
            load.finish()
            server.kill()
        # Logged database errors are expected; an error escaping the app is not.
        escaped = server.log_tail(10**9).count("Exception in ASGI application")
        if escaped:
            report.problems.append(f"{escaped} errors escaped the application (server log)")
    _judge(report, load.samples)
    return report


def _judge(report: FaultReport, samples: list[Sample]) -> None:
    samples.sort(key=lambda s: s.began)
    report.requests = len(samples)
    for s in samples:
        report.by_status[s.status] = report.by_status.get(s.status, 0) + 1
        if s.status == 503:
            report.slowest_503 = max(report.slowest_503, s.ended - s.began)
            if not s.outcome:
                report.problems.append(f"a 503 without an OperationOutcome ({s.what})")
        elif s.status >= 500 or s.status == 0:
            report.problems.append(f"{s.what}: status {s.status} at {s.began:.2f}")
        elif s.status >= 400:
            report.problems.append(f"{s.what}: unexpected {s.status}")
    if report.slowest_503 > 6.0:
        report.problems.append(f"a 503 took {report.slowest_503:.1f} s: not failing fast")
    for n, phase in enumerate(report.phases):
        during = [s for s in samples if phase.down_at <= s.began < phase.back_at]
        if not any(s.status == 503 for s in during):
            report.problems.append(f"{phase.name}: no request saw the database away")
        until = report.phases[n + 1].down_at if n + 1 < len(report.phases) else float("inf")
        after = [s for s in samples if s.began >= phase.back_at and s.ended < until]
        failures = [s for s in after if s.status not in {200, 201}]
        last_failure = max((s.ended for s in failures), default=phase.back_at)
        later = [s for s in after if s.began >= last_failure and s.status in (200, 201)]
        if not later:
            report.problems.append(f"{phase.name}: never recovered")
            phase.recovered_at = float("inf")
            continue
        phase.recovered_at = later[0].ended
        if phase.recovery_seconds > 5.0:
            report.problems.append(
                f"{phase.name}: recovered {phase.recovery_seconds:.1f} s after the database"
            )
        if not phase.readyz_down:
            report.problems.append(f"{phase.name}: /readyz did not report the database down")
        if phase.readyz_back_seconds > 5.0:
            report.problems.append(
                f"{phase.name}: /readyz took {phase.readyz_back_seconds:.1f} s to say ready"
            )


def as_dict(report: FaultReport) -> dict[str, Any]:
    return {
        "requests": report.requests,
        "by_status": report.by_status,
        "slowest_503": report.slowest_503,
        "phases": [
            {
                "name": p.name,
                "recovery_seconds": p.recovery_seconds,
                "readyz_back_seconds": p.readyz_back_seconds,
            }
            for p in report.phases
        ],
        "problems": report.problems,
    }
