"""A ``medcard serve`` subprocess on a free loopback port, and its memory.

RSS is read per process of the server's tree (the uvicorn supervisor and its
workers): psutil when installed, else ``VmRSS`` from ``/proc/PID/status``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.stores import Store

MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _medcard_cli() -> list[str]:
    exe = Path(sys.executable).with_name("medcard")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("medcard")
    return [found] if found else [sys.executable, "-m", "medcard.cli.main"]


def _children(pid: int) -> list[int]:
    try:
        import psutil

        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except ImportError:
        pass
    except Exception:  # the process is gone
        return []
    out, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in kids:
                out.append(int(k))
                frontier.append(int(k))
    return out


def rss_bytes(pid: int) -> int:
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        pass
    except Exception:  # the process is gone
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


@dataclass
class Memory:
    """Server RSS at one moment: the supervisor, each worker, anything else in the tree."""

    supervisor: int
    workers: list[int]
    others: int

    @property
    def total(self) -> int:
        return self.supervisor + sum(self.workers) + self.others

    @property
    def max_worker(self) -> int:
        return max(self.workers, default=0)


@dataclass
class MemoryPeak:
    total: int = 0
    max_worker: int = 0
    samples: int = 0

    def add(self, m: Memory) -> None:
        self.total = max(self.total, m.total)
        self.max_worker = max(self.max_worker, m.max_worker)
        self.samples += 1


class Server:
    def __init__(self, store: Store, workers: int = 2, log_dir: Path | None = None) -> None:
        self.store = store
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.fhir = f"{self.base}/fhir"
        self.log_path = (log_dir or store.data_dir) / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCARD_")}
        env.update(self.store.env())
        return env

    def start(self, timeout: float = 60) -> None:
        cmd = [*_medcard_cli(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", str(self.workers)]  # fmt: skip
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"medcard serve exited ({self.proc.returncode}); see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(
                f"medcard serve did not become ready in {timeout}s; see {self.log_path}"
            )
        # Every worker must be up before "idle" memory means anything.
        while time.monotonic() < deadline and len(self.memory().workers) < self.workers:
            time.sleep(0.2)
        self.token = self.mint_token()

    def mint_token(self) -> str:
        out = subprocess.run(
            [*_medcard_cli(), "token", "--scope", "system/*.*", "--lifetime", str(7 * 24 * 3600)],
            env=self.env(), check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip().splitlines()[-1]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/fhir+json"}

    def warm_every_worker(self, rounds: int = 20) -> None:
        """Touch the FHIR route on fresh connections so each worker has served a request."""
        for _ in range(rounds):
            with httpx.Client(headers=self.headers, timeout=30) as c:
                c.get(f"{self.fhir}/metadata")

    def memory(self) -> Memory:
        assert self.proc is not None
        root = self.proc.pid
        workers, others = [], 0
        for pid in _children(root):
            rss = rss_bytes(pid)
            if "multiprocessing.spawn" in _cmdline(pid):
                workers.append(rss)
            else:
                others += rss
        return Memory(rss_bytes(root), workers, others)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class MemoryWatch:
    """Samples the server's RSS in the background; one peak per labelled phase."""

    server: Server
    interval: float = 0.25
    peaks: dict[str, MemoryPeak] = field(default_factory=dict)
    _label: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def phase(self, label: str) -> None:
        self._label = label
        self.peaks.setdefault(label, MemoryPeak())

    def __enter__(self) -> MemoryWatch:
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self._label:
                self.peaks[self._label].add(self.server.memory())
