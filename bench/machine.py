"""What the figures were measured on: cores, memory, CPU, Python, PostgreSQL."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _postgres(admin_url: str) -> dict[str, str]:
    try:
        import psycopg

        with psycopg.connect(admin_url, connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("shared_buffers", "synchronous_commit", "max_connections", "work_mem")
            }
        return {"version": str(version[0]) if version else "?", **settings}
    except Exception as exc:  # the report says why it is missing
        return {"version": f"unavailable ({type(exc).__name__})"}


def describe(admin_url: str | None) -> dict[str, Any]:
    import sqlite3

    import sqlalchemy

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "memory_gib": round(_mem_total_gib(), 1),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "loadavg": Path("/proc/loadavg").read_text().split()[0]
        if Path("/proc/loadavg").exists()
        else "?",
    }
    if admin_url:
        info["postgresql"] = _postgres(admin_url)
    return info


def one_line(info: dict[str, Any]) -> str:
    pg = info.get("postgresql") or {}
    parts = [
        f"{info['nproc']} cores ({info['cpu']})",
        f"{info['memory_gib']} GiB RAM",
        f"Linux {info['kernel']}",
        f"Python {info['python']}",
        f"SQLite {info['sqlite']}",
        f"load average at start {info['loadavg']}",
    ]
    if pg:
        extra = ", ".join(f"{k}={v}" for k, v in pg.items() if k != "version")
        parts.append(f"PostgreSQL {pg.get('version')}" + (f" ({extra})" if extra else ""))
    return "; ".join(parts)
