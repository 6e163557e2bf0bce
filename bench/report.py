"""Figures against the issue's targets (defined for PostgreSQL) and the best peer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.table import Table


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    target: float | None = None
    higher_is_better: bool = False
    peer: float | None = None
    digits: int = 1


SCOPED = "Observation?patient=&code=&_sort=-date&_count=50"

ROWS: list[Row] = [
    Row("ingest4", "ingest, transaction Bundles, 4 clients", "res/s", 2500, True, 272, 0),
    Row("ingest1", "ingest, transaction Bundles, 1 client", "res/s", None, True, 154, 0),
    Row("pipeline", "pipeline limit (in-process, 1 core, no HTTP)", "res/s", None, True, None, 0),
    Row("ingest_ratio", "ingest 4 clients / pipeline limit", "%", 25, True, None, 0),
    Row("read.p50", "read p50", "ms", 2.0, False, 2.0, 2),
    Row("read.p95", "read p95", "ms", None, False, None, 2),
    Row(f"{SCOPED}.p50", f"{SCOPED} p50", "ms", None, False, 6.2, 2),
    Row(f"{SCOPED}.p95", f"{SCOPED} p95", "ms", 7.0, False, 7.1, 2),
    Row("Patient/$everything.p50", "Patient/$everything p50", "ms", 60, False, 77),
    Row("Patient/$everything.p95", "Patient/$everything p95", "ms", 100, False, 117),
    Row("Patient?name=.p50", "Patient?name= p50", "ms", None, False, None, 2),
    Row("Patient?name=.p95", "Patient?name= p95", "ms", None, False, None, 2),
    Row("Patient?birthdate=gt.p50", "Patient?birthdate=gt p50", "ms", None, False, None, 2),
    Row("Patient?birthdate=gt.p95", "Patient?birthdate=gt p95", "ms", None, False, None, 2),
    Row("Observation?code=&date=.p50", "Observation?code=&date= p50", "ms", None, False, None, 2),
    Row("Observation?code=&date=.p95", "Observation?code=&date= p95", "ms", None, False, None, 2),
    Row(
        "Observation?code=&_summary=count.p50",
        "Observation?code=&_summary=count p50",
        "ms",
        None,
        False,
        None,
        2,
    ),
    Row(
        "Observation?code=&_summary=count.p95",
        "Observation?code=&_summary=count p95",
        "ms",
        None,
        False,
        None,
        2,
    ),
    Row(
        "count_rate",
        "_summary=count matches/s (total / latency)",
        "matches/s",
        1_000_000,
        True,
        None,
        0,
    ),
    Row("rss_idle", "server RSS idle at start (supervisor + workers)", "MiB", 150, False, 232, 0),
    Row(
        "rss_idle_after",
        "server RSS idle after the run (supervisor + workers)",
        "MiB",
        150,
        False,
        None,
        0,
    ),
    Row("rss_worker_peak", "server RSS per worker, peak under load", "MiB", 400, False, None, 0),
]


def _num(v: float, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if abs(v) >= 10_000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def gap(row: Row, value: float | None) -> tuple[str, bool | None]:
    """Text of the distance to the target and whether the target is met."""
    if row.target is None or value is None or math.isnan(value):
        return "—", None
    met = value >= row.target if row.higher_is_better else value <= row.target
    diff = value - row.target
    ratio = value / row.target if row.target else float("inf")
    sign = "+" if diff >= 0 else "−"
    text = f"{sign}{_num(abs(diff), row.digits)} {row.unit} ({ratio:.2f}× target)"
    return ("✓ " if met else "✗ ") + text, met


NOISY = 0.3  # cores used by other processes above which a figure is marked


def cells(row: Row, figures: dict[str, Any], noise: dict[str, float] | None = None) -> list[str]:
    value = figures.get(row.key)
    busy = (noise or {}).get(row.key, 0.0)
    target = "—"
    if row.target is not None:
        target = f"{'≥' if row.higher_is_better else '≤'} {_num(row.target, 0)} {row.unit}"
    peer = f"{_num(row.peer, row.digits)}" if row.peer is not None else "—"
    figure = f"{_num(value, row.digits)} {row.unit}" if value is not None else "n/a"
    if busy > NOISY:
        figure += f" †{busy:.1f}"
    return [row.label, figure, target, gap(row, value)[0], peer]


HEADERS = ["measure", "figure", "target (PostgreSQL)", "gap", "best peer"]


NOISE_NOTE = (
    "† n: other processes on the machine used n cores while this figure was measured "
    "(before each phase the run waits for a quieter machine, within --quiet-wait)."
)


def rich_table(title: str, figures: dict[str, Any], noise: dict[str, float] | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for i, h in enumerate(HEADERS):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in ROWS:
        c = cells(row, figures, noise)
        _, met = gap(row, figures.get(row.key))
        style = "green" if met else "red" if met is False else None
        table.add_row(*c, style=style)
    return table


def markdown_table(figures: dict[str, Any], noise: dict[str, float] | None = None) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|---:|---:|---|---:|"]
    for row in ROWS:
        c = cells(row, figures, noise)
        c[0] = c[0].replace("|", "\\|")
        lines.append("| " + " | ".join(c) + " |")
    if any(v > NOISY for v in (noise or {}).values()):
        lines += ["", NOISE_NOTE]
    return "\n".join(lines)
