"""``medcard import``: Bundle JSON and NDJSON files, resumable, through the FHIR core.

A transaction Bundle is imported as one transaction (all or nothing); other Bundles
and NDJSON files are imported in chunks as transactions of PUT (resources with ids)
or POST entries, and a failing chunk is retried entry by entry so that every failure
has its own reason.  Progress is saved per file after each chunk, so an interrupted
import resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy import Engine, select

from medcard.access.context import AccessContext
from medcard.clock import now_micros
from medcard.db.engine import optimize
from medcard.db.tables import import_progress
from medcard.fhir import jsonio
from medcard.fhir.local import call

CHUNK = 200


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.suffix in (".json", ".ndjson") and f.is_file()
            )
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return out


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    rtype = resource.get("resourceType", "")
    if resource.get("id"):
        return {
            "resource": resource,
            "request": {"method": "PUT", "url": f"{rtype}/{resource['id']}"},
        }
    return {"resource": resource, "request": {"method": "POST", "url": rtype}}


def _resources(path: Path) -> Iterator[tuple[int, Any]]:
    if path.suffix == ".ndjson":
        with path.open("rb") as f:
            for n, line in enumerate(f):
                if line.strip():
                    try:
                        yield n, jsonio.loads(line)
                    except jsonio.JSONDecodeError as exc:
                        yield n, ValueError(f"line {n + 1}: not valid JSON ({exc})")
        return
    data = jsonio.loads(path.read_bytes())
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        for n, e in enumerate(data.get("entry", [])):
            yield (
                n,
                e.get("resource")
                if isinstance(e, dict)
                else ValueError(f"entry {n} is not an object"),
            )
    else:
        yield 0, data


def _position(engine: Engine, source: str) -> int:
    with engine.connect() as conn:
        pos = conn.execute(
            select(import_progress.c.position).where(import_progress.c.source == source)
        ).scalar()
    return int(pos or 0)


def _save(engine: Engine, source: str, position: int) -> None:
    with engine.begin() as conn:
        conn.execute(import_progress.delete().where(import_progress.c.source == source))
        conn.execute(
            import_progress.insert().values(source=source, position=position, updated=now_micros())
        )


def _count(resp_body: Any, summary: dict[str, Any]) -> None:
    for e in resp_body.get("entry", []):
        status = e.get("response", {}).get("status", "")
        if status.startswith("201"):
            summary["created"] += 1
        elif status.startswith("200"):
            summary["updated"] += 1


def import_paths(
    engine: Engine, paths: list[Path], *, console: Console | None = None, restart: bool = False
) -> dict[str, Any]:
    console = console or Console()
    ctx = AccessContext.system("system:import", purpose="import")
    files = _files(paths)
    summary: dict[str, Any] = {
        "files": len(files),
        "created": 0,
        "updated": 0,
        "failed": 0,
        "skipped": 0,
        "reasons": [],
    }
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("files", total=len(files))
        for path in files:
            source = str(path.resolve())
            done = 0 if restart else _position(engine, source)
            if done < 0:
                summary["skipped"] += 1
                progress.advance(task)
                continue
            _import_file(engine, ctx, path, source, done, summary)
            progress.advance(task)
    optimize(engine)
    return summary


def _import_file(
    engine: Engine, ctx: AccessContext, path: Path, source: str, done: int, summary: dict[str, Any]
) -> None:
    if path.suffix == ".json":
        try:
            data = jsonio.loads(path.read_bytes())
        except jsonio.JSONDecodeError as exc:
            summary["failed"] += 1
            summary["reasons"].append(f"{path}: not valid JSON ({exc})")
            return
        if isinstance(data, dict) and data.get("type") == "transaction":
            if done:
                summary["skipped"] += 1
                return
            resp = call(engine, ctx, "POST", "", data)
            body = orjson.loads(resp.body_bytes())
            if resp.status == 200:
                _count(body, summary)
                _save(engine, source, 1)
            else:
                summary["failed"] += len(data.get("entry", []))
                issue = body.get("issue", [{}])[0]
                summary["reasons"].append(f"{path}: {issue.get('diagnostics', resp.status)}")
            return
    chunk: list[tuple[int, Any]] = []
    last = done
    for n, item in _resources(path):
        if n < done:
            continue
        chunk.append((n, item))
        if len(chunk) >= CHUNK:
            last = _import_chunk(engine, ctx, path, chunk, summary)
            _save(engine, source, last + 1)
            chunk = []
    if chunk:
        last = _import_chunk(engine, ctx, path, chunk, summary)
        _save(engine, source, last + 1)


def _import_chunk(
    engine: Engine,
    ctx: AccessContext,
    path: Path,
    chunk: list[tuple[int, Any]],
    summary: dict[str, Any],
) -> int:
    good = [(n, r) for n, r in chunk if isinstance(r, dict)]
    for n, r in chunk:
        if not isinstance(r, dict):
            summary["failed"] += 1
            summary["reasons"].append(
                f"{path}: {r if isinstance(r, Exception) else f'item {n} is not a resource'}"
            )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry(r) for _, r in good],
    }
    resp = call(engine, ctx, "POST", "", bundle)
    if resp.status == 200:
        _count(orjson.loads(resp.body_bytes()), summary)
        return chunk[-1][0]
    for n, r in good:  # find the bad ones, keep the good ones
        one = {"resourceType": "Bundle", "type": "transaction", "entry": [_entry(r)]}
        resp = call(engine, ctx, "POST", "", one)
        body = orjson.loads(resp.body_bytes())
        if resp.status == 200:
            _count(body, summary)
        else:
            summary["failed"] += 1
            diag = body.get("issue", [{}])[0].get("diagnostics", str(resp.status))
            summary["reasons"].append(
                f"{path} #{n + 1} ({r.get('resourceType')}/{r.get('id', '-')}): {diag}"
            )
    return chunk[-1][0]
