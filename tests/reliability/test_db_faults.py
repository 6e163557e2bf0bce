"""PostgreSQL restarted or away under load: 503 with an OperationOutcome, never a 500;
``/readyz`` follows; the service recovers by itself within 5 s of the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.dbfaults import run_db_faults


@pytest.mark.usefixtures("needs_private_postgres")
def test_database_restart_and_outage_fail_fast_and_recover(backend: str, tmp_path: Path) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL faults run in the PostgreSQL pass of the suite")
    report = run_db_faults(tmp_path)
    assert report.problems == [], report.summary()
    assert report.by_status.get(503, 0) > 0, report.summary()
    assert set(report.by_status) <= {200, 201, 503}, report.summary()
    assert report.slowest_503 < 6.0
    for phase in report.phases:
        assert phase.recovery_seconds <= 5.0, report.summary()
        assert phase.readyz_down
        assert phase.readyz_back_seconds <= 5.0
