"""An injectable clock: tests and the demo generator need a controllable 'now'."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def now_micros() -> int:
    """Microseconds since the epoch: the unit every stored instant uses."""
    return time.time_ns() // 1000


def micros_to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def format_instant(us: int) -> str:
    """FHIR instant with millisecond precision, e.g. 2026-11-26T12:00:00.123+00:00."""
    return micros_to_datetime(us).isoformat(timespec="milliseconds")
