"""Where ingest time goes: py-spy samples folded into pipeline stages and layers,
plus a CPU split between the server, PostgreSQL and this harness.

py-spy records on-CPU Python stacks (idle threads, i.e. time blocked on the
database socket, are left out), so "stages" answer "what burns the server's CPU".
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# (label, file fragment, function); the deepest matching frame of a stack names its stage.
STAGES: list[tuple[str, str, str]] = [
    ("HTTP body read + FHIR route (web/app.py)", "medcard/web/app.py", ""),
    ("token verification (ES256 JWT)", "medcard/auth/tokens.py", ""),
    (
        "transaction (connection checkout, begin, commit)",
        "medcard/fhir/store/repository.py",
        "unit_of_work",
    ),
    (
        "BEGIN (SQLite: BEGIN IMMEDIATE, waits for the write lock)",
        "medcard/db/engine.py",
        "_on_begin",
    ),
    ("COMMIT", "sqlalchemy/engine/default.py", "do_commit"),
    ("parse request JSON (orjson)", "medcard/fhir/router.py", "_json_body"),
    ("response body (orjson)", "medcard/fhir/router.py", "body_bytes"),
    ("bundle entry parsing", "medcard/fhir/bundles.py", "parse_entries"),
    ("id assignment / conditional matches", "medcard/fhir/bundles.py", "_assign_ids"),
    ("reference rewrite (urn:uuid)", "medcard/fhir/bundles.py", "_rewrite"),
    ("reference existence check (SELECT)", "medcard/fhir/bundles.py", "_check_exist"),
    ("transaction-response entries", "medcard/fhir/bundles.py", "_response"),
    ("validate (fhir.resources + bindings)", "medcard/fhir/validation.py", "validate"),
    ("compartment key (patient_of)", "medcard/fhir/store/compartment.py", "patient_of"),
    ("stamp meta + serialise (orjson)", "medcard/fhir/store/repository.py", "_insert"),
    ("index rows (search extraction)", "medcard/fhir/search/indexer.py", "index_rows"),
    ("bulk INSERT (resources, versions, index)", "medcard/fhir/store/repository.py", "_flush"),
    ("audit entries", "medcard/audit/recorder.py", ""),
]

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("pydantic / fhir.resources", ("pydantic", "fhir_core", "fhir/resources")),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("psycopg (driver)", ("psycopg",)),
    ("sqlite3 (driver)", ("sqlite3/",)),
    (
        "uvicorn / Starlette / FastAPI / anyio",
        ("uvicorn", "starlette", "fastapi", "anyio", "h11", "httptools", "asyncio"),
    ),
    ("joserfc / cryptography", ("joserfc", "cryptography")),
    ("httpx (bench client)", ("httpx", "httpcore")),
    ("medcard", ("medcard/",)),
]


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip().rpartition(" ")
    frames = [f for f in stack.split(";") if "(" in f and ":" in f and not f.startswith("process ")]
    return frames, int(count) if count.isdigit() else 0


def _stage(frames: list[str]) -> str:
    found = ""
    for frame in frames:
        func = frame.split(" (", 1)[0].rsplit(".", 1)[-1]
        for label, path, name in STAGES:
            if path in frame and (not name or func == name):
                found = label
    if found:
        return found
    if any(p in f for f in frames for p in ("uvicorn", "starlette", "fastapi", "anyio")):
        return "HTTP/ASGI (uvicorn, Starlette) outside the FHIR core"
    return "other"


def _layer(leaf: str) -> str:
    for label, needles in LAYERS:
        if any(n in leaf for n in needles):
            return label
    return "Python stdlib / other"


@dataclass
class Profile:
    title: str
    samples: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    layers: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)

    def table(self, counter: Counter[str], top: int = 20) -> list[tuple[str, float]]:
        total = sum(counter.values()) or 1
        return [(k, 100.0 * v / total) for k, v in counter.most_common(top)]

    def markdown(self) -> str:
        lines = [f"**{self.title}** ({self.samples} samples)", ""]
        lines += ["| stage (deepest medcard step on the stack) | % of CPU samples |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in self.table(self.stages)]
        lines += ["", "| layer (leaf frame) | % |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in self.table(self.layers)]
        lines += ["", "| hottest leaf functions (self time) | % |", "|---|---:|"]
        lines += [f"| `{k}` | {v:.1f} |" for k, v in self.table(self.leaves, 12)]
        return "\n".join(lines)


def fold(raw: Path, title: str, only_under: str = "") -> Profile:
    """Fold raw py-spy stacks; ``only_under`` keeps stacks through that function."""
    prof = Profile(title)
    for line in raw.read_text(errors="replace").splitlines():
        frames, count = _frames(line)
        if not frames or count == 0:
            continue
        if only_under and not any(f.startswith(only_under + " ") for f in frames):
            continue
        prof.samples += count
        prof.stages[_stage(frames)] += count
        prof.layers[_layer(frames[-1])] += count
        leaf = frames[-1].split(" (", 1)
        where = leaf[1].rsplit(":", 1)[0] if len(leaf) > 1 else ""
        prof.leaves[f"{leaf[0]} ({where})"] += count
    return prof


def py_spy() -> str | None:
    exe = Path(sys.executable).with_name("py-spy")
    return str(exe) if exe.exists() else shutil.which("py-spy")


def record_command(out: Path, rate: int = 97) -> list[str]:
    """Prefix that runs a command under ``py-spy record`` (raw collapsed stacks)."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    return [exe, "record", "--format", "raw", "--rate", str(rate), "--output", str(out), "--"]


class Recorder:
    """``py-spy record`` attached to a running process (and its children) until stopped."""

    def __init__(self, pid: int, out: Path, subprocesses: bool, rate: int = 97) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        cmd = [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
               "--nonblocking", "--output", str(out)]  # fmt: skip
        if subprocesses:
            cmd.append("--subprocesses")
        self.out = out
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- CPU split ------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def _postgres_pids(database: str) -> list[int]:
    """Backends of ``database`` plus PostgreSQL's own helpers (WAL writer, checkpointer, ...).

    A backend's process title names its database ("postgres: user db 127.0.0.1(5432) idle"),
    so other databases' sessions on the same server (other people's tests) are left out.
    """
    if not database:
        return []
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if (p / "comm").read_text().strip() != "postgres":
                continue
            title = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        is_client_backend = "(" in title or "[local]" in title
        if not is_client_backend or f" {database} " in title:
            out.append(int(p.name))
    return out


def _machine_busy_seconds() -> float:
    """CPU seconds all processes spent busy (everything in /proc/stat but idle and iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    busy = sum(ticks) - ticks[3] - ticks[4] - sum(ticks[8:10])  # guest time is inside user
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuSnapshot:
    server: float
    postgres: float
    harness: float
    machine: float


def cpu_snapshot(server_pids: list[int], database: str = "") -> CpuSnapshot:
    """CPU seconds so far; ``database``: the PostgreSQL database whose backends count."""
    return CpuSnapshot(
        server=sum(_cpu_seconds(p) for p in server_pids),
        postgres=sum(_cpu_seconds(p) for p in _postgres_pids(database)),
        harness=_cpu_seconds(os.getpid()),
        machine=_machine_busy_seconds(),
    )


def cpu_split(before: CpuSnapshot, after: CpuSnapshot, wall: float) -> dict[str, float]:
    """Cores used on average by each party during ``wall`` seconds."""
    if wall <= 0:
        return {}
    return {
        "server (medcard workers)": (after.server - before.server) / wall,
        "PostgreSQL backends": (after.postgres - before.postgres) / wall,
        "bench harness (clients)": (after.harness - before.harness) / wall,
        "everything else on the machine": (
            (after.machine - before.machine)
            - (after.server - before.server)
            - (after.postgres - before.postgres)
            - (after.harness - before.harness)
        )
        / wall,
    }


def others_cores(before: CpuSnapshot, after: CpuSnapshot, wall: float) -> float:
    """Cores used by processes that are neither ours nor our database's, during ``wall``."""
    return cpu_split(before, after, wall).get("everything else on the machine", 0.0)


def wait_quiet(
    pids: list[int],
    database: str,
    *,
    limit: float = 0.5,
    max_wait: float = 300.0,
    log: Callable[[str], None] = print,
) -> float:
    """Wait (up to ``max_wait`` s) until other processes use under ``limit`` cores.

    Other people's test runs on a 2-core machine halve every figure; a run waits
    for them rather than record noise.  Returns the last reading.
    """
    started = time.monotonic()
    told = False
    while True:
        before = cpu_snapshot(pids, database)
        time.sleep(3.0)
        busy = others_cores(before, cpu_snapshot(pids, database), 3.0)
        if busy < limit or time.monotonic() - started > max_wait:
            if told:
                log(f"machine: other processes now use {busy:.2f} cores; going on")
            return busy
        if not told:
            log(
                f"machine: other processes use {busy:.2f} cores; waiting for them (up to {max_wait:.0f}s)"
            )
            told = True
