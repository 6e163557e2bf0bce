"""Parsing what people type into entry forms: dates, numbers, codes, choices.

Every parser adds a :class:`Problem` to the collector and returns None instead of
raising, so one submission reports every mistake at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from medcard.entries.problems import Collector
from medcard.ru_dates import parse_day, parse_local
from medcard.terminology import ICD10, Catalog, Concept, UnknownCodeError

# Clinics enter local wall-clock times; the card stores them with their offset.
TZ = ZoneInfo("Europe/Moscow")
Form = Mapping[str, str]


class Reader:
    def __init__(self, form: Form, errs: Collector, now: dt.datetime) -> None:
        self.form = form
        self.errs = errs
        self.now = now

    def text(self, name: str, *, required: bool = False, limit: int = 4000) -> str:
        value = (self.form.get(name) or "").strip()
        if required and not value:
            self.errs.add(name, "ws_err_required")
        if len(value) > limit:
            self.errs.add(name, "ws_err_too_long", limit=str(limit))
            return value[:limit]
        return value

    def choice(self, name: str, options: Mapping[str, object], *, required: bool = True) -> str:
        value = (self.form.get(name) or "").strip()
        if not value and not required:
            return ""
        if value not in options:
            self.errs.add(name, "ws_err_choose")
            return ""
        return value

    def when(
        self, name: str, *, required: bool = True, not_future: bool = True
    ) -> dt.datetime | None:
        """A local date-time (``01.03.2026 10:30``; ISO ``2026-03-01T10:30`` too) or a
        date (then noon), in the clinic's zone unless an ISO value names its offset."""
        raw = (self.form.get(name) or "").strip()
        if not raw:
            if required:
                self.errs.add(name, "ws_err_required")
            return None
        value = _local_or_iso(raw)
        if value is None:
            self.errs.add(name, "ws_err_datetime")
            return None
        value = value.replace(tzinfo=TZ) if value.tzinfo is None else value
        if not_future and value > self.now + dt.timedelta(minutes=5):
            self.errs.add(name, "ws_err_future_date")
            return None
        if value.year < 1900:
            self.errs.add(name, "ws_err_date_too_old")
            return None
        return value

    def day(self, name: str, *, required: bool = True) -> dt.date | None:
        """A date: ``01.03.2026`` (or ISO ``2026-03-01``)."""
        raw = (self.form.get(name) or "").strip()
        if not raw:
            if required:
                self.errs.add(name, "ws_err_required")
            return None
        try:
            return parse_day(raw)
        except ValueError:
            self.errs.add(name, "ws_err_date")
            return None

    def number(
        self, name: str, *, required: bool = True, low: float = 0, high: float = 1e9
    ) -> float | None:
        raw = (self.form.get(name) or "").strip().replace(",", ".").replace(" ", "")
        if not raw:
            if required:
                self.errs.add(name, "ws_err_required")
            return None
        if not re.fullmatch(r"-?\d+(\.\d+)?", raw):
            self.errs.add(name, "ws_err_number")
            return None
        value = float(raw)
        if not low <= value <= high:
            self.errs.add(name, "ws_err_range", low=_num(low), high=_num(high))
            return None
        return value

    def integer(
        self, name: str, *, required: bool = True, low: int = 1, high: int = 100
    ) -> int | None:
        value = self.number(name, required=required, low=low, high=high)
        if value is None:
            return None
        if value != int(value):
            self.errs.add(name, "ws_err_integer")
            return None
        return int(value)

    def icd10(self, name: str, *, required: bool = True) -> Concept | None:
        raw = (self.form.get(name) or "").strip()
        if not raw:
            if required:
                self.errs.add(name, "ws_err_required")
            return None
        try:
            return ICD10.lookup(raw)
        except UnknownCodeError as exc:
            if exc.hint:
                self.errs.add(name, "ws_err_icd_not_leaf", code=exc.code, hint=exc.hint)
            else:
                self.errs.add(name, "ws_err_icd_unknown", code=exc.code[:20])
            return None

    def concept(self, name: str, catalog: Catalog, *, required: bool = True) -> Concept | None:
        raw = (self.form.get(name) or "").strip()
        if not raw:
            if required:
                self.errs.add(name, "ws_err_required")
            return None
        found = catalog.resolve(raw)
        if found is None:
            self.errs.add(name, "ws_err_code_unknown", code=raw[:60])
        return found


def _local_or_iso(raw: str) -> dt.datetime | None:
    """Russian or ISO wall-clock time (a bare date means noon), or ISO with an offset."""
    try:
        value, timed = parse_local(raw)
    except ValueError:
        pass
    else:
        return value if timed else value.replace(hour=12)
    if "T" not in raw:
        return None
    try:  # an offset or fractions: what API-minded clients and old links send
        return dt.datetime.fromisoformat(raw)
    except ValueError:
        return None


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def instant(value: dt.datetime) -> str:
    return value.astimezone(TZ).isoformat(timespec="seconds")
