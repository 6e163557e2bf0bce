"""Dates as Russian clinicians write and read them: ДД.ММ.ГГГГ and ДД.ММ.ГГГГ ЧЧ:ММ.

Browsers draw ``<input type="date">`` in the browser's locale (mm/dd/yyyy in an
en-US browser), so the forms use text inputs with these formats and the server parses
them, accepting ISO 8601 as well (what scripts, older links and copy-paste send).
Instants are shown in the clinic's zone (Moscow) unless a page says otherwise.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Moscow")
DAY_FORMAT = "ДД.ММ.ГГГГ"
DATETIME_FORMAT = "ДД.ММ.ГГГГ ЧЧ:ММ"
# The same grammar for the browser's own check (the pattern attribute) and the server.
DAY_PATTERN = r"\d{1,2}\.\d{1,2}\.\d{4}|\d{4}-\d{2}-\d{2}"
DATETIME_PATTERN = (
    r"\d{1,2}\.\d{1,2}\.\d{4}(,? \d{1,2}:\d{2})?|\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?"
)

_RU = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:,?\s+(\d{1,2}):(\d{2}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$")


def _parts(text: str) -> tuple[int, int, int, int | None, int, int]:
    raw = text.strip()
    m = _RU.match(raw)
    if m:
        d, mo, y, h, mi = m.groups()
        return int(y), int(mo), int(d), int(h) if h else None, int(mi or 0), 0
    m = _ISO.match(raw)
    if m:
        y, mo, d, h, mi, s = m.groups()
        return int(y), int(mo), int(d), int(h) if h else None, int(mi or 0), int(s or 0)
    raise ValueError(f"not {DATETIME_FORMAT}: {text!r}")


def parse_day(text: str) -> dt.date:
    """``31.12.2024`` or ``2024-12-31``; ValueError for anything else (a time included)."""
    y, mo, d, h, _, _ = _parts(text)
    if h is not None:
        raise ValueError(f"a date without a time was expected: {text!r}")
    return dt.date(y, mo, d)


def parse_local(text: str) -> tuple[dt.datetime, bool]:
    """A wall-clock date-time (naive) and whether a time was given.

    ``31.12.2024 10:30``, ``31.12.2024, 10:30``, ``31.12.2024``, ``2024-12-31T10:30``,
    ``2024-12-31``.  ValueError when malformed or not a real day or time.
    """
    y, mo, d, h, mi, s = _parts(text)
    # naive on purpose: a wall-clock time; the caller puts it in the clinic's zone
    return dt.datetime(y, mo, d, h or 0, mi, s), h is not None  # noqa: DTZ001


def show_day(value: object) -> str:
    """«31.12.2024» from a date, a datetime or an ISO string (partial dates as they are)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    text = str(value or "")
    day = text[:10]
    if len(day) == 10 and day[4] == "-" and day[7] == "-":
        return f"{day[8:10]}.{day[5:7]}.{day[:4]}"
    if len(day) == 7 and day[4] == "-":
        return f"{day[5:7]}.{day[:4]}"
    return text


def show_when(value: object, zone: ZoneInfo = TZ) -> str:
    """«31.12.2024 10:30» from an instant (ISO string or datetime), in ``zone``.

    A bare date stays a date; text that is not a date comes back unchanged.
    """
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= 10:
            return show_day(text)
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(zone)
        return value.strftime("%d.%m.%Y %H:%M")
    return show_day(value)
