"""Processes the battery starts and kills: a private PostgreSQL and ``medcard`` servers.

The machine's shared PostgreSQL cluster is never touched: tests that stop the database
get a throwaway cluster of their own (``initdb`` + ``pg_ctl`` in a temporary directory,
on a free port), removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

PG_BIN = Path(os.environ.get("MEDCARD_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_LOG_TAIL = 4000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_binaries_missing() -> str:
    """Why a private PostgreSQL cannot be made here, or "" when it can."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL binaries are absent ({PG_BIN / tool} not found)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: initdb refuses root"
    return ""


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on loopback that tests may stop and kill at will."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="medcard-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses root: the cluster belongs to the postgres system user.
            shutil.chown(self.root, "postgres", "postgres")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
            [*self._as_postgres, *cmd], check=check, capture_output=True, text=True, timeout=120
        )

    def init(self) -> PrivatePostgres:
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        conf = self.data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = 200\n"
                "shared_buffers = 32MB\nlogging_collector = off\n"
            )
        self.start()
        return self

    def start(self, timeout: float = 60) -> None:
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(int(timeout)), "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, recovery from WAL at the next start."""
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
        )

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.init()

    def __exit__(self, *_exc: object) -> None:
        self.destroy()


class Server:
    """One ``uvicorn medcard.web.asgi:app`` process on a free loopback port.

    The store must already be migrated (``medcard.db.migrate.upgrade``).
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        workers: int = 1,
        keep_alive: int = 5,
        **env: str,
    ) -> None:
        self.keep_alive = keep_alive
        self.data_dir = data_dir
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra_env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"
        self.starts = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCARD_")}
        env["MEDCARD_DATA_DIR"] = str(self.data_dir)
        env["MEDCARD_DATABASE_URL"] = self.database_url
        env["PYTHONWARNINGS"] = "ignore"
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> float:
        """Start and wait until ``/readyz`` answers 200; returns the seconds it took."""
        began = time.monotonic()
        cmd = [sys.executable, "-m", "uvicorn", "medcard.web.asgi:app", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning",
               "--timeout-keep-alive", str(self.keep_alive)]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.starts += 1
        deadline = began + timeout
        with httpx.Client(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"server exited ({self.proc.returncode}):\n{self.log_tail()}"
                    )
                try:
                    if http.get(f"{self.base}/readyz").status_code == 200:
                        return time.monotonic() - began
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handlers, no flushing."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, chars: int = SERVER_LOG_TAIL) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def system_token(data_dir: Path, scope: str = "system/*.*", **claims: object) -> str:
    """A bearer token signed with the data directory's key, as ``medcard token`` mints."""
    from medcard.auth.tokens import TokenIssuer, load_or_create_key

    issuer = TokenIssuer(load_or_create_key(data_dir / "signing-key.json"), "medcard")
    subject = str(claims.pop("subject", "system:reliability"))
    return issuer.mint(subject, scope, lifetime=7 * 24 * 3600, **claims)  # type: ignore[arg-type]


def migrate(database_url: str, data_dir: Path) -> None:
    from medcard.config import Settings
    from medcard.db.engine import make_engine
    from medcard.db.migrate import upgrade

    engine = make_engine(Settings(data_dir=data_dir, database_url=database_url))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
