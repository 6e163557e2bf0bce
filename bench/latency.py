"""Latency figures: sequential requests on one keep-alive connection, after a warm-up.

Query values come from the data that was stored: real Patient ids (the ones with
the most Observations for patient-scoped search), LOINC codes that occur, family
name prefixes, months in which Observations were made.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from bench.data import Population
from bench.ingest import Catalogue
from bench.server import Server


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class Timing:
    name: str
    ms: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # entries returned (or total for counts)
    errors: list[str] = field(default_factory=list)
    others: float = 0.0  # cores other processes used meanwhile
    capped: bool = False  # stopped by the time budget before ``samples``

    @property
    def p50(self) -> float:
        return percentile(self.ms, 0.50)

    @property
    def p95(self) -> float:
        return percentile(self.ms, 0.95)

    @property
    def mean_size(self) -> float:
        return sum(self.sizes) / len(self.sizes) if self.sizes else 0.0

    def matches_per_second(self) -> float:
        """Median over samples of total/latency (the ``_summary=count`` figure)."""
        rates = [n / (ms / 1000) for n, ms in zip(self.sizes, self.ms, strict=True) if ms > 0]
        return percentile(rates, 0.5)


Path_ = str  # a path below /fhir with its query


@dataclass
class QuerySet:
    name: str
    paths: list[Path_]
    count_only: bool = False


def _top(counter: Counter[str], n: int) -> list[str]:
    return [k for k, _ in counter.most_common(n)]


def query_sets(
    pop: Population, cat: Catalogue, big_id: str | None, seed: int = 1
) -> list[QuerySet]:
    rng = random.Random(seed)
    stored = [(i, pid) for i, pid in cat.patients.items()]
    if not stored:
        raise RuntimeError("no stored patients to query")
    loinc: Counter[str] = Counter()
    months: Counter[str] = Counter()
    for i, _ in stored:
        loinc.update(pop.meta[i]["codes"])
        months.update(pop.meta[i]["months"])
    top_codes = _top(loinc, 10)
    if not top_codes:
        raise RuntimeError("the population has no LOINC-coded Observations")

    # Patient-scoped search: the 50 patients with most Observations, each with its commonest code.
    busiest = sorted(stored, key=lambda ip: -sum(pop.meta[ip[0]]["codes"].values()))[:50]
    scoped = []
    for i, pid in busiest:
        code = Counter(pop.meta[i]["codes"]).most_common(1)[0][0]
        scoped.append(
            f"Observation?{urlencode({'patient': pid, 'code': code, '_sort': '-date', '_count': 50})}"
        )

    families = sorted({pop.meta[i]["family"] for i, _ in stored if len(pop.meta[i]["family"]) >= 3})
    prefixes = sorted({f[:3] for f in families})
    rng.shuffle(prefixes)
    names = [f"Patient?{urlencode({'name': p})}" for p in prefixes[:50]]

    births = sorted(pop.meta[i]["birth"] for i, _ in stored if pop.meta[i]["birth"])
    pivots = (
        [births[int(len(births) * q)] for q in (0.5, 0.6, 0.7, 0.8, 0.9)]
        if births
        else ["1980-01-01"]
    )
    birthdates = [f"Patient?{urlencode({'birthdate': 'gt' + b})}" for b in pivots]

    common_months = _top(months, 24)
    code_date = [
        f"Observation?{urlencode([('code', rng.choice(top_codes)), ('date', m)])}"
        for m in common_months
    ]
    counts = [f"Observation?{urlencode({'code': c, '_summary': 'count'})}" for c in top_codes]

    sample = list(dict.fromkeys(cat.sample))
    rng.shuffle(sample)
    sets = [
        QuerySet("read", sample[:500]),
        QuerySet("Observation?patient=&code=&_sort=-date&_count=50", scoped),
        QuerySet("Patient?name=", names),
        QuerySet("Patient?birthdate=gt", birthdates),
        QuerySet("Observation?code=&date=", code_date),
        QuerySet("Observation?code=&_summary=count", counts, count_only=True),
    ]
    if big_id:
        sets.append(QuerySet("Patient/$everything", [f"Patient/{big_id}/$everything"]))
    return sets


def _size(body: dict[str, Any], count_only: bool) -> int:
    if count_only:
        return int(body.get("total", 0))
    if body.get("resourceType") == "Bundle":
        return len(body.get("entry", []))
    return 1


MIN_SAMPLES = 30


def measure(
    server: Server,
    qs: QuerySet,
    samples: int,
    warmup: int,
    progress: Callable[[str], None] | None = None,
    budget: float = 90.0,
) -> Timing:
    """``samples`` timed requests, or fewer (at least 30) once ``budget`` seconds have passed."""
    timing = Timing(qs.name)
    started = time.monotonic()
    with httpx.Client(headers=server.headers, timeout=120) as client:
        for n in range(warmup + samples):
            if len(timing.ms) >= MIN_SAMPLES and time.monotonic() - started > budget:
                timing.capped = True
                break
            path = qs.paths[n % len(qs.paths)]
            t0 = time.perf_counter()
            resp = client.get(f"{server.fhir}/{path}")
            body = resp.content
            ms = (time.perf_counter() - t0) * 1000
            if resp.status_code != 200:
                timing.errors.append(f"{path}: HTTP {resp.status_code} {resp.text[:200]}")
                continue
            if n < warmup:
                continue
            timing.ms.append(ms)
            timing.sizes.append(_size(orjson.loads(body), qs.count_only))
    if progress:
        capped = f" (time budget: {len(timing.ms)} samples)" if timing.capped else ""
        progress(
            f"{qs.name}: p50 {timing.p50:.2f} ms, p95 {timing.p95:.2f} ms, "
            f"mean size {timing.mean_size:.0f}{capped}"
        )
    return timing
