"""Load, short form: 2 minutes at 50 users (patients, clinicians, integrators 6:3:1) with
locust as a subprocess; zero errors, and no memory growth beyond warm-up.

It runs in the SQLite pass of the suite (the PostgreSQL pass already carries the longer
crash and database-fault runs); the long form runs 30 minutes at 200 users on both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.load import run_load


def test_two_minutes_at_fifty_users_without_an_error(backend: str, tmp_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("the load short form runs in the SQLite pass (CI time budget)")
    report = run_load(backend, tmp_path, users=50, seconds=120, patients=30)
    assert report.problems == [], report.summary()
    assert report.total is not None
    assert report.errors == 0, (report.summary(), report.failures)
    assert report.total.requests > 1000, report.summary()
    groups = {g.name.split(":")[0] for g in report.groups}
    assert groups == {"patient", "clinician", "integrator"}
    early, late = report.memory_growth()
    assert late - early < 48, report.summary()  # MiB; the long form has the real trend
