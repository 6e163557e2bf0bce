"""Crash consistency, short form: 50 SIGKILLs of a server under write load.

On the SQLite run of the suite the server writes an SQLite file; on the PostgreSQL
run it writes to a private PostgreSQL that is also stopped immediately (a database
crash) at about half of the kills.  ``python -m reliability run --long`` runs the
long form (200+ kills, 1,000+ Bundles on each store).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.crash import CrashConfig, run_crash


@pytest.mark.usefixtures("needs_private_postgres")
def test_every_acknowledged_write_survives_fifty_kills(backend: str, tmp_path: Path) -> None:
    report = run_crash(backend, tmp_path, CrashConfig(kills=50, min_gap=0.1, max_gap=0.7))
    assert report.problems == [], report.summary()
    assert report.kills >= 50
    if backend == "postgresql":
        assert report.db_kills >= 10
    # The load really ran across the crashes, and retries really happened.
    assert report.bundles_acked >= 100, report.summary()
    assert report.updates_acked >= 50, report.summary()
    assert report.retries >= 25, report.summary()
    assert sum(n for s, n in report.http_5xx.items() if s != 503) == 0
