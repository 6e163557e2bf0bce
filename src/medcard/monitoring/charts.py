"""Diary charts as server-rendered SVG: no JavaScript, readable at any size and in print.

Each chart is a time axis over the chosen period (day, week, month) with the target
range as a shaded band, a line through the readings and a dot per reading (amber
outside the target, red when far outside).  Every dot carries a ``<title>`` (value and
time), and the picture a text description, so screen readers get the same facts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

from medcard.monitoring.metrics import METRIC
from medcard.monitoring.readings import Point
from medcard.monitoring.targets import Target, flags
from medcard.ru_dates import Times

W, H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 30
COLORS = {
    "main": "#0b57d0",
    "second": "#7b3fb0",
    "band": "#dff3e4",
    "high": "#b26a00",
    "far": "#c62828",
    "grid": "#d0d7de",
    "text": "#57606a",
}


@dataclass(frozen=True)
class Series:
    label: str
    values: list[tuple[datetime, float, str]]  # (when, value, flag: "" | "out" | "far")
    color: str


def _nice_step(span: float) -> float:
    raw = span / 4 or 1
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return float(m * power)
    return float(10 * power)


def _ticks(
    start: datetime, end: datetime, period: str, zone: ZoneInfo
) -> list[tuple[datetime, str]]:
    local = start.astimezone(zone)
    if period == "day":
        first = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        step, fmt = timedelta(hours=3), "%H:%M"
        first += timedelta(hours=(3 - first.hour % 3) % 3)
    else:
        first = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        step = timedelta(days=1 if period == "week" else 5)
        fmt = "%d.%m"
    out: list[tuple[datetime, str]] = []
    t = first
    while t <= end and len(out) < 40:
        out.append((t, t.strftime(fmt)))
        t += step
    return out


def render(
    key: str,
    points: list[Point],
    targets: dict[str, Target],
    start: datetime,
    end: datetime,
    period: str,
    zone: ZoneInfo,
    lang: str = "ru",
) -> Markup:
    """One chart: ``key`` is "bp" or a metric key; points of other metrics are ignored."""
    mine = [p for p in points if p.metric == key]
    if key == "bp":
        title = "Артериальное давление" if lang == "ru" else "Blood pressure"
        unit = METRIC["systolic"].unit.display
        parts = [("systolic", COLORS["main"]), ("diastolic", COLORS["second"])]
    else:
        title, unit = METRIC[key].title(lang), METRIC[key].unit.display
        parts = [(key, COLORS["main"])]
    series = []
    for part, color in parts:
        values = []
        for p in mine:
            value = p.diastolic if part == "diastolic" and p.diastolic is not None else p.value
            side, far = flags(Point(p.id, part, p.when, value), targets)
            values.append((p.when, value, "far" if far else ("out" if side else "")))
        series.append(Series(METRIC[part].title(lang), values, color))
    bands = [(targets[part].low, targets[part].high) for part, _ in parts if part in targets]
    numbers = [v for s in series for _, v, _ in s.values]
    numbers += [b for band in bands for b in band if b is not None]
    if not numbers:
        numbers = [0.0, 1.0]
    lo, hi = min(numbers), max(numbers)
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 1)
    lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    span_t = (end - start).total_seconds() or 1

    def x(when: datetime) -> float:
        return LEFT + (W - LEFT - RIGHT) * (when - start).total_seconds() / span_t

    def y(value: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (1 - (value - lo) / (hi - lo))

    desc = _description(title, unit, series, bands, lang)
    out = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="100%" role="img" '
        f'aria-labelledby="chart-{key}-title chart-{key}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-{key}-title">{escape(title)}, {escape(unit)}</title>',
        f'<desc id="chart-{key}-desc">{escape(desc)}</desc>',
    ]
    for low, high in bands:
        top = y(high if high is not None else hi)
        bottom = y(low if low is not None else lo)
        out.append(
            f'<rect x="{LEFT}" y="{top:.1f}" width="{W - LEFT - RIGHT}" '
            f'height="{max(bottom - top, 0):.1f}" fill="{COLORS["band"]}"/>'
        )
    v = lo
    while v <= hi + step / 2:
        yy = y(v)
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" '
            f'stroke="{COLORS["grid"]}" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{COLORS["text"]}">{v:g}</text>'
        )
        v += step
    for when, label in _ticks(start, end, period, zone):
        xx = x(when)
        out.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{TOP}" y2="{H - BOTTOM}" '
            f'stroke="{COLORS["grid"]}" stroke-width="0.5"/>'
            f'<text x="{xx:.1f}" y="{H - 10}" text-anchor="middle" font-size="11" '
            f'fill="{COLORS["text"]}">{label}</text>'
        )
    for s in series:
        if len(s.values) > 1:
            pts = " ".join(f"{x(w):.1f},{y(val):.1f}" for w, val, _ in s.values)
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{s.color}" stroke-width="2"/>'
            )
        for when, val, flag in s.values:
            color = {"far": COLORS["far"], "out": COLORS["high"]}.get(flag, s.color)
            shown = Times(zone, lang).when(when)
            out.append(
                f'<circle cx="{x(when):.1f}" cy="{y(val):.1f}" r="{5 if flag else 3.5}" '
                f'fill="{color}" data-flag="{flag or "ok"}"><title>{escape(s.label)}: '
                f"{val:g} {escape(unit)}, {shown}</title></circle>"
            )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text above is escaped


def _description(
    title: str,
    unit: str,
    series: list[Series],
    bands: list[tuple[float | None, float | None]],
    lang: str,
) -> str:
    ru = lang == "ru"
    parts = []
    for s in series:
        values = [v for _, v, _ in s.values]
        if not values:
            parts.append(f"{s.label}: " + ("нет данных" if ru else "no readings"))
            continue
        far = sum(1 for _, _, f in s.values if f == "far")
        parts.append(
            f"{s.label}: {len(values)} "
            + ("измерений" if ru else "readings")
            + f", {min(values):g}–{max(values):g} {unit}"
            + (f", {far} " + ("далеко вне цели" if ru else "far out of range") if far else "")
        )
    for low, high in bands:
        shown = f"{'' if low is None else f'{low:g}'}–{'' if high is None else f'{high:g}'}"
        parts.append(("цель " if ru else "target ") + shown)
    return f"{title}. " + "; ".join(parts)
