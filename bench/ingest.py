"""Ingest figures: transaction Bundles over HTTP (1 and N clients), and the pipeline limit.

The pipeline limit runs the same FHIR core in this process, without HTTP, ASGI or
token checks: parse (orjson) + validate + index + one bulk insert per table, in one
unit of work per Bundle (``medcard.fhir.local.call``), on the same store.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.data import Population
from bench.server import Server
from bench.stores import Store


@dataclass
class IngestResult:
    mode: str
    bundles: int = 0
    resources: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    bundle_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0

    def merge(self, other: IngestResult) -> None:
        self.bundles += other.bundles
        self.resources += other.resources
        self.seconds += other.seconds
        self.errors += other.errors
        self.bundle_ms += other.bundle_ms


@dataclass
class Catalogue:
    """What was stored, as the server named it: patient ids and a sample of every type."""

    patients: dict[int, str] = field(default_factory=dict)  # bundle index -> Patient id
    sample: list[str] = field(default_factory=list)  # "Type/id"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, index: int, meta: dict[str, Any], response: dict[str, Any]) -> None:
        locations = [
            e.get("response", {}).get("location", "").split("/_history")[0]
            for e in response.get("entry", [])
        ]
        rng = random.Random(index)
        picked = rng.sample(locations, min(2, len(locations)))
        with self.lock:
            if 0 <= meta["patient"] < len(locations):
                self.patients[index] = locations[meta["patient"]].split("/", 1)[1]
            self.sample.extend(p for p in picked if p)


def post_bundle(client: httpx.Client, fhir: str, raw: bytes) -> httpx.Response:
    return client.post(
        f"{fhir}/",
        content=raw,
        headers={"Content-Type": "application/fhir+json", "Prefer": "return=minimal"},
    )


def http_ingest(
    server: Server,
    pop: Population,
    indices: Sequence[int],
    clients: int,
    catalogue: Catalogue,
) -> IngestResult:
    """POST the given patient Bundles with ``clients`` concurrent keep-alive clients."""
    result = IngestResult(f"http x{clients}")
    lock = threading.Lock()
    queue = iter(indices)

    def work() -> None:
        fd = os.open(pop.path, os.O_RDONLY)
        try:
            with httpx.Client(headers=server.headers, timeout=600) as client:
                while True:
                    with lock:
                        i = next(queue, None)
                    if i is None:
                        return
                    raw = pop.read(i, fd)
                    t0 = time.perf_counter()
                    try:
                        resp = post_bundle(client, server.fhir, raw)
                    except httpx.HTTPError as exc:
                        with lock:
                            result.errors.append(f"bundle {i}: {type(exc).__name__}: {exc}")
                        continue
                    ms = (time.perf_counter() - t0) * 1000
                    if resp.status_code != 200:
                        with lock:
                            result.errors.append(
                                f"bundle {i}: HTTP {resp.status_code} {resp.text[:300]}"
                            )
                        continue
                    catalogue.note(i, pop.meta[i], orjson.loads(resp.content))
                    with lock:
                        result.bundles += 1
                        result.resources += pop.meta[i]["n"]
                        result.bundle_ms.append(ms)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=work, name=f"ingest-{n}") for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


class Pipeline:
    """The FHIR core in this process: a transaction Bundle in, rows committed, no HTTP."""

    def __init__(self, store: Store) -> None:
        from medcard.access.context import AccessContext
        from medcard.db.engine import make_engine

        self.engine = make_engine(store.settings())
        self.ctx = AccessContext.system("system:bench", purpose="benchmark")

    def warm(self, raw: bytes) -> None:
        """Load what the first write of each type loads (pydantic models, spec tables), untimed.

        The server's workers have paid this by the time the pipeline runs; without
        it the pipeline's first Bundles would be charged for imports.
        """
        from medcard.fhir.search.indexer import index_rows
        from medcard.fhir.validation import validate

        for entry in orjson.loads(raw).get("entry", []):
            resource = dict(entry["resource"], id="warm-up")
            validate(resource)
            index_rows(resource, "")

    def post(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        from medcard.fhir.local import call

        resp = call(self.engine, self.ctx, "POST", "", raw)
        body = (
            resp.body if isinstance(resp.body, dict) else orjson.loads(resp.body_bytes() or b"{}")
        )
        return resp.status, body

    def ingest(self, pop: Population, indices: Sequence[int], catalogue: Catalogue) -> IngestResult:
        result = IngestResult("pipeline")
        fd = os.open(pop.path, os.O_RDONLY)
        try:
            started = time.perf_counter()
            for i in indices:
                raw = pop.read(i, fd)
                t0 = time.perf_counter()
                status, body = self.post(raw)
                ms = (time.perf_counter() - t0) * 1000
                if status != 200:
                    result.errors.append(f"bundle {i}: {status} {orjson.dumps(body)[:300]!r}")
                    continue
                catalogue.note(i, pop.meta[i], body)
                result.bundles += 1
                result.resources += pop.meta[i]["n"]
                result.bundle_ms.append(ms)
            result.seconds = time.perf_counter() - started
        finally:
            os.close(fd)
        return result

    def close(self) -> None:
        self.engine.dispose()


def pipeline_in_subprocess(
    store: Store,
    pop: Population,
    indices: range,
    catalogue: Catalogue,
    wrap: Sequence[str] = (),
) -> IngestResult:
    """Run :class:`Pipeline` in a fresh interpreter (``python -m bench pipeline``).

    A fresh process keeps the figure free of this harness's threads and heap
    (the catalogue of a large run makes every GC pass here slower); ``wrap``
    prefixes the command, e.g. with ``py-spy record ... --``.
    """
    cmd = [*wrap, sys.executable, "-m", "bench", "pipeline", "--spool", str(pop.path.parent),
           "--data-dir", str(store.data_dir), "--database-url", store.database_url,
           "--start", str(indices.start), "--stop", str(indices.stop)]  # fmt: skip
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(cmd, check=True, capture_output=True, env=env)
    # py-spy, when it wraps the command, prints its own lines too: take ours.
    line = next(x for x in reversed(out.stdout.splitlines()) if x.startswith(b"{"))
    payload = orjson.loads(line)
    result = IngestResult("pipeline", payload["bundles"], payload["resources"], payload["seconds"],
                          payload["errors"], payload["bundle_ms"])  # fmt: skip
    with catalogue.lock:
        catalogue.patients.update({int(k): v for k, v in payload["patients"].items()})
        catalogue.sample.extend(payload["sample"])
    return result


def pipeline_main(spool: Path, data_dir: Path, database_url: str, start: int, stop: int) -> int:
    """Entry of ``python -m bench pipeline``: ingest a range, print one JSON line."""
    from bench.data import open_spool

    pop = open_spool(spool)
    store = Store("postgres" if database_url else "sqlite", data_dir, database_url)
    pipeline = Pipeline(store)
    cat = Catalogue()
    try:
        pipeline.warm(pop.big)
        result = pipeline.ingest(pop, range(start, stop), cat)
    finally:
        pipeline.close()
    payload = {
        "bundles": result.bundles,
        "resources": result.resources,
        "seconds": result.seconds,
        "errors": result.errors,
        "bundle_ms": result.bundle_ms,
        "patients": {str(k): v for k, v in cat.patients.items()},
        "sample": cat.sample,
    }
    sys.stdout.buffer.write(orjson.dumps(payload) + b"\n")
    return 0
