"""The synthetic population, generated once and spooled to disk as one Bundle per line.

Both stores ingest the same bytes, and JSON encoding is done before any clock
starts, so ingest figures measure the server, not the generator.  A spool is
cached under ``~/.cache/medcard-bench`` keyed by size, seed and the generator's
source, so a second run (or the second store) does not generate again.

Alongside each Bundle we keep what the latency phase needs to pick realistic query
values: the Patient's entry, family name and birth date, the LOINC codes and
months of its Observations.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

LOINC = "http://loinc.org"
CACHE_ROOT = Path(os.environ.get("MEDCARD_BENCH_CACHE", Path.home() / ".cache" / "medcard-bench"))
SPOOL_VERSION = 1


@dataclass
class Population:
    """Bundles on disk (read by offset) and what we know about each."""

    path: Path
    offsets: list[tuple[int, int]]  # (offset, length) per patient Bundle
    meta: list[dict[str, Any]]
    reference: bytes  # organisations and practitioners (PUT entries)
    big: bytes  # one patient with about --big-patient resources
    big_meta: dict[str, Any]
    generate_seconds: float

    @property
    def resources(self) -> int:
        return sum(m["n"] for m in self.meta)

    def read(self, i: int, fd: int) -> bytes:
        offset, length = self.offsets[i]
        return os.pread(fd, length, offset)


def _population_module() -> Any:
    from medcard.demo import population

    return population


def _big_patient(pop: Any, target: int, seed: int) -> dict[str, Any]:
    bundle: dict[str, Any] = pop.patient_bundle_with_resources(target, seed=seed)
    return bundle


def describe_bundle(bundle: dict[str, Any]) -> dict[str, Any]:
    entries = bundle.get("entry", [])
    meta: dict[str, Any] = {"n": len(entries), "patient": -1, "family": "", "birth": ""}
    codes: Counter[str] = Counter()
    months: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for i, e in enumerate(entries):
        res = e.get("resource") or {}
        rtype = res.get("resourceType", "")
        types[rtype] += 1
        if rtype == "Patient" and meta["patient"] < 0:
            meta["patient"] = i
            names = res.get("name") or [{}]
            meta["family"] = names[0].get("family", "")
            meta["birth"] = res.get("birthDate", "")
        elif rtype == "Observation":
            for c in (res.get("code") or {}).get("coding", []):
                if c.get("system") == LOINC and c.get("code"):
                    codes[c["code"]] += 1
            when = res.get("effectiveDateTime") or (res.get("effectivePeriod") or {}).get("start")
            if isinstance(when, str) and len(when) >= 7:
                months[when[:7]] += 1
    meta["codes"] = dict(codes)
    meta["months"] = dict(months)
    meta["types"] = dict(types)
    return meta


def _key(patients: int, seed: int, big: int) -> str:
    pop = _population_module()
    src = inspect.getsource(pop).encode()
    digest = hashlib.sha256(src + f"{SPOOL_VERSION}/{patients}/{seed}/{big}".encode()).hexdigest()
    return f"p{patients}-s{seed}-b{big}-{digest[:12]}"


def _patient_bundles(n: int, seed: int) -> Iterator[dict[str, Any]]:
    pop = _population_module()
    yield from pop.patient_bundles(n, seed=seed)


def load(patients: int, seed: int, big: int, *, log: Any = print) -> Population:
    """Generate (or reuse) the spool for ``patients`` patient Bundles and the big patient."""
    pop = _population_module()
    folder = CACHE_ROOT / _key(patients, seed, big)
    done = folder / "index.json"
    if done.exists():
        index = orjson.loads(done.read_bytes())
        done.touch()
        log(f"population: reusing {folder} ({len(index['offsets'])} bundles)")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        offsets: list[tuple[int, int]] = []
        meta: list[dict[str, Any]] = []
        position = 0
        with (folder / "bundles.ndjson").open("wb") as f:
            for i, bundle in enumerate(_patient_bundles(patients, seed)):
                raw = orjson.dumps(bundle)
                f.write(raw + b"\n")
                offsets.append((position, len(raw)))
                position += len(raw) + 1
                meta.append(describe_bundle(bundle))
                if (i + 1) % 1000 == 0:
                    log(f"population: {i + 1}/{patients} patients generated")
        (folder / "reference.json").write_bytes(orjson.dumps(pop.reference_bundle(seed)))
        big_bundle = _big_patient(pop, big, seed + 7919)
        (folder / "big.json").write_bytes(orjson.dumps(big_bundle))
        seconds = time.perf_counter() - started
        index = {"offsets": offsets, "meta": meta, "big_meta": describe_bundle(big_bundle),
                 "seconds": seconds}  # fmt: skip
        done.write_bytes(orjson.dumps(index))
        log(f"population: {patients} patients generated in {seconds:.0f}s -> {folder}")
        _prune(keep=3)
    return open_spool(folder, index)


def _prune(keep: int) -> None:
    """Keep the ``keep`` most recently used spools; a changed generator orphans the rest."""
    spools = sorted(
        (p for p in CACHE_ROOT.glob("p*-s*-b*") if (p / "index.json").exists()),
        key=lambda p: (p / "index.json").stat().st_mtime,
        reverse=True,
    )
    for old in spools[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def open_spool(folder: Path, index: dict[str, Any] | None = None) -> Population:
    index = index or orjson.loads((folder / "index.json").read_bytes())
    return Population(
        path=folder / "bundles.ndjson",
        offsets=[tuple(o) for o in index["offsets"]],  # type: ignore[misc]
        meta=index["meta"],
        reference=(folder / "reference.json").read_bytes(),
        big=(folder / "big.json").read_bytes(),
        big_meta=index["big_meta"],
        generate_seconds=index["seconds"],
    )
