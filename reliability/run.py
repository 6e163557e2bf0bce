"""``python -m reliability run [--long]``: the battery's runs, and RELIABILITY.md.

Each section runs in a process of its own (``python -m reliability section NAME``) and
leaves its figures as JSON; sections that do not measure time-sensitive things run side
by side, the load test runs alone.  ``--long`` is the long form: 200+ kills and 1,000+
Bundles on each store, 100,000+ fuzzed requests, 30 minutes at 200 users.  Without it
the short forms run (as CI does) and RELIABILITY.md is left alone unless ``--write``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SHORT = {
    "crash_kills": 50, "crash_bundles": 0, "fuzz_draws": 4_300, "openapi_examples": 150,
    "load_users": 50, "load_seconds": 120,
}  # fmt: skip
LONG = {
    "crash_kills": 200, "crash_bundles": 1_000, "fuzz_draws": 42_000, "openapi_examples": 1_500,
    "load_users": 200, "load_seconds": 1_800,
}  # fmt: skip

# Sections that may share the machine, then the load test alone.
GROUPS = [
    ["crash-sqlite", "fuzz-fhir", "fuzz-openapi"],
    ["crash-postgresql", "db-faults", "fuzz-fhir-postgresql", "fuzz-openapi-postgresql"],
    ["load"],
]


def section(name: str, long: bool, out: Path) -> dict[str, Any]:
    """Run one section in this process and write its figures to ``out``."""
    sizes = LONG if long else SHORT
    work = Path(tempfile.mkdtemp(prefix=f"medcard-{name}-"))
    began = time.monotonic()
    result: dict[str, Any]
    if name.startswith("crash-"):
        from reliability.crash import CrashConfig, run_crash

        cfg = CrashConfig(kills=sizes["crash_kills"], min_bundles=sizes["crash_bundles"])
        rep = run_crash(name.split("-", 1)[1], work, cfg)
        result = {
            "summary": rep.summary(), "kills": rep.kills, "db_kills": rep.db_kills,
            "bundles": rep.bundles_acked, "bundle_sends": rep.bundle_attempts,
            "deduplicated": rep.bundles_deduplicated, "updates": rep.updates_acked,
            "confirmed_by_read": rep.updates_confirmed_by_read, "retries": rep.retries,
            "http_5xx": dict(rep.http_5xx), "slowest_restart": max(rep.restart_seconds, default=0),
            "problems": rep.problems[:50],
        }  # fmt: skip
    elif name == "db-faults":
        from reliability.dbfaults import as_dict, run_db_faults

        rep_f = run_db_faults(work, outage_seconds=10.0 if long else 4.0)
        result = {"summary": rep_f.summary(), **as_dict(rep_f)}
    elif name.startswith("fuzz-fhir"):
        result = _on_store(name, work, lambda url: _fuzz_fhir(work, sizes["fuzz_draws"], url))
    elif name.startswith("fuzz-openapi"):
        result = _on_store(
            name, work, lambda url: _fuzz_openapi(work, sizes["openapi_examples"], url)
        )
    elif name == "load":
        from reliability.load import as_dict as load_dict
        from reliability.load import run_load

        backend = "postgresql" if long else "sqlite"
        rep_l = run_load(backend, work, users=sizes["load_users"], seconds=sizes["load_seconds"],
                         patients=200 if long else 30, workers=2 if long else 1)  # fmt: skip
        result = {"summary": rep_l.summary(), **load_dict(rep_l)}
    else:
        raise SystemExit(f"unknown section {name}")
    result["wall_seconds"] = round(time.monotonic() - began)
    result.setdefault("seconds", result["wall_seconds"])
    result["name"] = name
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return result


def _on_store(name: str, work: Path, fn: Any) -> dict[str, Any]:
    """``...-postgresql`` sections run on a private PostgreSQL, the others on SQLite."""
    if not name.endswith("-postgresql"):
        return dict(fn(""))
    from reliability.procs import PrivatePostgres

    with PrivatePostgres() as pg:
        return dict(fn(pg.create_database("medcard")))


def _in_process_app(work: Path, database_url: str = "") -> tuple[Any, Any, Any]:
    from medcard.auth.tokens import TokenIssuer, load_or_create_key
    from medcard.config import Settings
    from medcard.db.engine import make_engine
    from medcard.db.migrate import upgrade
    from medcard.web.app import create_app

    settings = Settings(data_dir=work, database_url=database_url)
    engine = make_engine(settings)
    upgrade(engine)
    issuer = TokenIssuer(load_or_create_key(settings.signing_key_path), settings.token_issuer)
    return create_app(settings, engine), engine, issuer


def _fuzz_fhir(work: Path, draws: int, database_url: str = "") -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from reliability.fuzz import fuzz_fhir

    app, _engine, issuer = _in_process_app(work, database_url)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as http:
        system = issuer.mint("system:fuzz", "system/*.*")
        auth = {"Authorization": f"Bearer {system}"}
        p = http.post(
            "/fhir/Patient", json={"resourceType": "Patient", "gender": "male"}, headers=auth
        ).json()
        o = http.post("/fhir/Observation", headers=auth, json={
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": f"Patient/{p['id']}"}}).json()  # fmt: skip
        tokens = {
            "system": system,
            "patient": issuer.mint(f"Patient/{p['id']}", "patient/*.cruds", patient=p["id"]),
            "practitioner": issuer.mint(
                "Practitioner/p1", "user/*.cruds", extra={"role": "practitioner"}
            ),
        }

        def send(method: str, url: str, headers: dict[str, str], body: bytes | None) -> int:
            raw = {k: v.encode("latin-1") for k, v in headers.items()}
            return http.request(method, url, headers=raw, content=body).status_code

        rep = fuzz_fhir(
            send,
            [f"Patient/{p['id']}", f"Observation/{o['id']}"],
            tokens,
            draws,
            seed=int(time.time()),
        )
    fives = sum(n for s, n in rep.by_status.items() if s >= 500)
    return {"summary": rep.summary(), "requests": rep.requests, "five_xx": fives,
            "by_status": dict(rep.by_status), "problems": rep.failures[:20]}  # fmt: skip


def _fuzz_openapi(work: Path, examples: int, database_url: str = "") -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from reliability.fuzz import fuzz_openapi, nonfhir_openapi

    app, _engine, _issuer = _in_process_app(work, database_url)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as http:
        rep = fuzz_openapi(
            nonfhir_openapi(app.openapi()), lambda kw: http.request(**kw).status_code, examples,
            seed=int(time.time()),
        )  # fmt: skip
    fives = sum(n for s, n in rep.by_status.items() if s >= 500)
    return {"summary": rep.summary(), "requests": rep.requests, "five_xx": fives,
            "by_status": dict(rep.by_status), "problems": rep.failures[:20]}  # fmt: skip


def run(long: bool, write: bool, only: list[str] | None = None) -> int:
    out_dir = ROOT / "build" / "reliability"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    results: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        names = [n for n in group if not only or n in only]
        procs = []
        for name in names:
            out = out_dir / f"{name}.json"
            out.unlink(missing_ok=True)
            cmd = [sys.executable, "-m", "reliability", "section", name, "--out", str(out)]
            if long:
                cmd.append("--long")
            log = (out_dir / f"{name}.log").open("w")
            say(f"[{datetime.now(UTC):%H:%M:%S}] {name} started", flush=True)
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
            procs.append((name, out, proc))
        for name, out, proc in procs:
            proc.wait()
            if out.exists():
                results[name] = json.loads(out.read_text())
                say(
                    f"[{datetime.now(UTC):%H:%M:%S}] {name}: {results[name]['summary']}", flush=True
                )
            else:
                results[name] = {"summary": f"failed (exit {proc.returncode}); see {out_dir / name}.log",
                                 "problems": ["section crashed"]}  # fmt: skip
                say(f"{name} FAILED, see {out_dir / name}.log", flush=True)
    return report(long=long, write=write, started=started, results=results)


def report(
    *,
    long: bool,
    write: bool,
    started: datetime | None = None,
    results: dict[str, dict[str, Any]] | None = None,
) -> int:
    """Checks, results.json and (with ``write``) RELIABILITY.md; without ``results`` the
    sections' JSON files in build/reliability are read (re-render after re-running one)."""
    out_dir = ROOT / "build" / "reliability"
    if results is None:
        order = [n for g in GROUPS for n in g]
        found = {
            p.stem: json.loads(p.read_text()) for p in out_dir.glob("*.json") if p.stem in order
        }
        results = {n: found[n] for n in order if n in found}
    if started is None:  # re-rendering: the run began when its first section did
        files = [out_dir / f"{n}.json" for n in results]
        first = min(
            (f.stat().st_mtime - results[f.stem].get("seconds", 0) for f in files),
            default=time.time(),
        )
        started = datetime.fromtimestamp(first, UTC)
    checks = _checks()
    ok = all(not r.get("problems") for r in results.values()) and all(
        c["status"] == "ok" for c in checks.values()
    )
    (out_dir / "results.json").write_text(
        json.dumps({"results": results, "checks": checks}, ensure_ascii=False, indent=1)
    )
    if write:
        from reliability.report import render

        (ROOT / "RELIABILITY.md").write_text(
            render(
                results,
                checks,
                long=long,
                started=started,
                ended=datetime.now(UTC),
                machine=_machine(),
            )
        )
        say("RELIABILITY.md written")
    return 0 if ok else 1


def say(text: str, *, flush: bool = True) -> None:
    sys.stdout.write(text + "\n")
    if flush:
        sys.stdout.flush()


def _checks() -> dict[str, dict[str, str]]:
    """pip-audit and bandit, as CI runs them (scripts/security.sh)."""
    out: dict[str, dict[str, str]] = {}
    for name in ("pip-audit", "bandit"):
        done = subprocess.run([str(ROOT / "scripts" / "security.sh"), name], cwd=ROOT,  # noqa: S603
                              capture_output=True, text=True, check=False)  # fmt: skip
        text = (done.stdout + done.stderr).strip()
        status = "ok" if done.returncode == 0 else "failed"
        if "SKIPPED" in text:
            status = "skipped"
        out[name] = {"status": status, "output": text[-1500:]}
    return out


def _machine() -> str:
    import os

    cpus = os.cpu_count() or 0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        mem = 0
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs, {mem:.0f} GiB RAM, Python {platform.python_version()} (shared with other work)"
