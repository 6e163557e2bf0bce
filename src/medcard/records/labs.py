"""Lab results over time: one series per analyte, out-of-range flags, a trend chart.

The chart is server-rendered SVG (no JavaScript, allowed by the pages' CSP): the
reference range as a band, a line through the values, out-of-range points marked in
shape as well as colour, and a text alternative.  Pages put the numbers in a table
next to it, which is what screen readers and keyboard users read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html import escape

from medcard.records.card import Card, Entry, coding_code, ru_date

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,63}")


@dataclass(frozen=True, slots=True)
class Point:
    entry: Entry
    date: str
    value: float | None
    text: str
    unit: str
    low: float | None
    high: float | None
    flag: str


@dataclass(frozen=True, slots=True)
class Series:
    key: str
    title: str
    unit: str
    points: tuple[Point, ...]  # oldest first

    @property
    def latest(self) -> Point:
        return self.points[-1]

    @property
    def numeric(self) -> list[Point]:
        return [p for p in self.points if p.value is not None]


def analyte_key(entry: Entry) -> str:
    """A URL-safe key for an analyte: its LOINC (or first) code, else a digest of its name."""
    code = entry.resource.get("code") or {}
    loinc = coding_code(code, "loinc.org") or coding_code(code)
    if loinc and _SAFE.fullmatch(loinc):
        return loinc
    return "t-" + hashlib.sha1(entry.title.casefold().encode()).hexdigest()[:12]  # noqa: S324


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _point(entry: Entry) -> Point:
    res = entry.resource
    q = res.get("valueQuantity") or {}
    ranges = res.get("referenceRange") or [{}]
    return Point(
        entry,
        entry.date,
        _num(q.get("value")),
        entry.summary,
        str(q.get("unit") or q.get("code") or ""),
        _num((ranges[0].get("low") or {}).get("value")),
        _num((ranges[0].get("high") or {}).get("value")),
        entry.flag,
    )


def lab_series(card: Card) -> list[Series]:
    """Every analyte measured in the lab section, by name; points oldest first."""
    groups: dict[str, list[Entry]] = {}
    for entry in card.entries:
        if entry.resource_type == "Observation" and entry.section == "labs":
            groups.setdefault(analyte_key(entry), []).append(entry)
    out = []
    for key, entries in groups.items():
        entries.sort(key=lambda e: (e.date, e.id))
        points = tuple(_point(e) for e in entries)
        unit = next((p.unit for p in reversed(points) if p.unit), "")
        out.append(Series(key, entries[-1].title, unit, points))
    out.sort(key=lambda s: s.title.casefold())
    return out


def series_for(card: Card, key: str) -> Series | None:
    return next((s for s in lab_series(card) if s.key == key), None)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def trend_svg(series: Series, *, width: int = 640, height: int = 220, label: str = "") -> str:
    """The series as SVG markup (a line chart, the reference range shaded); every text
    inside is escaped, so pages may embed it as it is."""
    pts = series.numeric
    pad_l, pad_r, pad_t, pad_b = 56, 16, 16, 36
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    title = escape(label or f"{series.title}, {series.unit}")
    head = (
        f'<svg class="trend" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{title}</title>"
    )
    if not pts:
        return head + "</svg>"
    values = [p.value for p in pts if p.value is not None]
    bounds = [*values]
    lows = [p.low for p in pts if p.low is not None]
    highs = [p.high for p in pts if p.high is not None]
    if lows:
        bounds.append(min(lows))
    if highs:
        bounds.append(max(highs))
    lo, hi = min(bounds), max(bounds)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * 0.08
    lo, hi = lo - margin, hi + margin

    def y(v: float) -> float:
        return pad_t + h - (v - lo) / (hi - lo) * h

    n = len(pts)

    def x(i: int) -> float:
        return pad_l + (w / 2 if n == 1 else i * w / (n - 1))

    parts = [head]
    parts.append(
        f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="#fff" stroke="#d0d7de"/>'
    )
    band_lo = pts[-1].low if pts[-1].low is not None else (min(lows) if lows else None)
    band_hi = pts[-1].high if pts[-1].high is not None else (max(highs) if highs else None)
    if band_lo is not None or band_hi is not None:
        top = y(band_hi) if band_hi is not None else pad_t
        bottom = y(band_lo) if band_lo is not None else pad_t + h
        parts.append(
            f'<rect class="range" x="{pad_l}" y="{top:.1f}" width="{w}" '
            f'height="{max(bottom - top, 0):.1f}" fill="#e6f4ea"/>'
        )
    for v in (lo + margin, hi - margin):
        parts.append(
            f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#59636e">{escape(_fmt(v))}</text>'
        )
    line = " ".join(f"{x(i):.1f},{y(p.value or 0):.1f}" for i, p in enumerate(pts))
    if n > 1:
        parts.append(f'<polyline points="{line}" fill="none" stroke="#0b5cad" stroke-width="2"/>')
    for i, p in enumerate(pts):
        cx, cy = x(i), y(p.value or 0)
        tip = escape(f"{ru_date(p.date)}: {p.text}")
        if p.entry.out_of_range:
            parts.append(
                f'<rect x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10" fill="#a4161a">'
                f"<title>{tip}</title></rect>"
            )
        else:
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="#0b5cad">'
                f"<title>{tip}</title></circle>"
            )
    first, last = ru_date(pts[0].date), ru_date(pts[-1].date)
    parts.append(
        f'<text x="{pad_l}" y="{height - 10}" font-size="12" fill="#59636e">{escape(first)}</text>'
    )
    if n > 1:
        parts.append(
            f'<text x="{pad_l + w}" y="{height - 10}" text-anchor="end" font-size="12" '
            f'fill="#59636e">{escape(last)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)  # every interpolated text is escaped: safe to embed
