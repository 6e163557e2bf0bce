"""FHIR value parsing shared by indexing and searching: dates as ranges, strings folded."""

from __future__ import annotations

import calendar
import decimal
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

MIN_US = -(2**62)
MAX_US = 2**62

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


def _us(dt: datetime) -> int:
    # floor division of timedeltas is exact; true division went through a float and
    # lost microseconds beyond ~2255 and before ~1685 (low > high for such ranges)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def date_range(text: str) -> tuple[int, int]:
    """The instant range [low, high] (microseconds, inclusive) a FHIR date/dateTime covers.

    A partial date covers its whole year, month or day; a time without seconds its
    minute.  Dates without a zone are taken as UTC.  Raises ValueError when malformed.
    """
    m = _DATE.match(text.strip())
    if not m:
        raise ValueError(f"not a FHIR date or dateTime: {text!r}")
    y = int(m["y"])
    tz: timezone = UTC
    if m["tz"] and m["tz"] != "Z":
        sign = 1 if m["tz"][0] == "+" else -1
        hh, mm = int(m["tz"][1:3]), int(m["tz"][4:6])
        tz = timezone(timedelta(minutes=sign * (hh * 60 + mm)))
    try:
        start, end = _bounds(m, y, tz)
    except OverflowError:
        # The range ends after 9999-12-31, the last day Python's datetime (and FHIR's
        # four-digit year) can name: it runs to that end (found by the reliability fuzzer).
        start = _start_of(m, y, tz)
        return _us(start), _us(datetime.max.replace(tzinfo=UTC))
    return _us(start), _us(end) - 1


def _start_of(m: re.Match[str], y: int, tz: timezone) -> datetime:
    if m["m"] is None:
        return datetime(y, 1, 1, tzinfo=tz)
    if m["d"] is None:
        return datetime(y, int(m["m"]), 1, tzinfo=tz)
    if m["H"] is None:
        return datetime(y, int(m["m"]), int(m["d"]), tzinfo=tz)
    frac = m["f"] or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    return datetime(
        y, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), int(m["S"] or 0), micro, tzinfo=tz
    )


def _bounds(m: re.Match[str], y: int, tz: timezone) -> tuple[datetime, datetime]:
    """Start, and the first instant after the range; OverflowError past year 9999."""
    start = _start_of(m, y, tz)
    if m["m"] is None:
        end = start + timedelta(days=366 if calendar.isleap(y) else 365)
    elif m["d"] is None:
        end = start + timedelta(days=calendar.monthrange(y, int(m["m"]))[1])
    elif m["H"] is None:
        end = start + timedelta(days=1)
    else:
        frac = m["f"] or ""
        if m["S"] is None:
            end = start + timedelta(minutes=1)
        elif frac:
            end = start + timedelta(microseconds=10 ** (6 - min(len(frac), 6)))
        else:
            end = start + timedelta(seconds=1)
    return start, end


def fold(text: str) -> str:
    """Case- and accent-insensitive form for string search (ё matches е)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def number_range(text: str) -> tuple[float, float, float]:
    """(value, low, high): the implicit range of a decimal given its precision (R4 3.1.1.4.2)."""
    if not _DECIMAL.match(text):  # float() would also take "nan", "inf" and "1_000"
        raise ValueError(f"not a FHIR decimal: {text!r}")
    try:
        found = _number_range(text)
    except OverflowError:  # "1e400": beyond a double (found by the reliability fuzzer)
        raise ValueError(f"out of range: {text!r}") from None
    if not all(math.isfinite(x) for x in found):
        raise ValueError(f"out of range: {text!r}")
    return found


def _number_range(text: str) -> tuple[float, float, float]:
    # The bounds are worked out exactly (Decimal: "0.40" is 0.395..0.405, "1.0e2" is
    # 95..105) and only then rounded to the index's double precision.
    with decimal.localcontext() as ctx:
        ctx.prec = 200
        ctx.Emax, ctx.Emin = decimal.MAX_EMAX, decimal.MIN_EMIN
        value = decimal.Decimal(text)
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite: _DECIMAL matched
        half = decimal.Decimal(5).scaleb(exponent - 1)
        return float(value), float(value - half), float(value + half)
