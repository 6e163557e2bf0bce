"""Issue 13: a PostgreSQL store that has just received data plans like an analysed one,
because the store refreshes planner statistics itself right after large writes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from medcard.db import statistics
from tests import factories


def _analyze_count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        found = conn.execute(
            text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}
        ).scalar()
    return int(found or 0)


def _load(client: TestClient, patient_id: str, n: int) -> None:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": factories.observation(patient_id, value=100 + i % 50),
                "request": {"method": "POST", "url": "Observation"},
            }
            for i in range(n)
        ],
    }
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text[:300]


def test_a_large_write_is_followed_by_analyze(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite plans these searches without statistics")
    monkeypatch.setenv("MEDCARD_FRESH_STATISTICS", "1")  # off elsewhere in the suite
    pid = client.post("/fhir/Patient", json=factories.patient()).json()["id"]
    # The suite empties tables with DELETE, which leaves the statistics of earlier
    # tests' data: start from statistics of this (near empty) store, as a new one has.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE sp_token")
    time.sleep(1.1)  # backends report their counts up to a second late
    before = _analyze_count(engine, "sp_token")
    _load(client, pid, 300)
    deadline = time.monotonic() + 20
    while _analyze_count(engine, "sp_token") == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _analyze_count(engine, "sp_token") > before, "no ANALYZE after 300 Observations"
    # and the search is answered from a plan made with statistics
    r = client.get(
        "/fhir/Observation",
        params={"patient": pid, "code": "http://loinc.org|718-7", "_sort": "-date", "_count": "50"},
    )
    assert r.status_code == 200
    assert len(r.json()["entry"]) == 50


def test_only_tables_changed_past_autovacuums_rule_are_analysed(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setenv("MEDCARD_FRESH_STATISTICS", "0")  # rounds by hand only
    pid = client.post("/fhir/Patient", json=factories.patient()).json()["id"]
    _load(client, pid, 200)
    assert "sp_token" in _round(engine, {"sp_token": 2000, "sp_date": 200})
    assert _round(engine, {"no_such_table": 5000}) == []


@pytest.mark.parametrize(
    ("counted", "written", "tuples", "never", "stale"),
    [
        (0, 0, 0, True, False),  # nothing changed
        (0, 3, 0, True, True),  # never analysed: any change
        (0, 10, 1000, False, False),  # 10 rows of 1,000: below 50 + 10 %
        (0, 150, 1000, False, True),  # 150 >= 50 + 100
        (200, 10, 1000, False, True),  # PostgreSQL's count, reported late, counts too
        (0, 60, -1, False, True),  # reltuples unknown (-1) is an empty table
    ],
)
def test_the_rule_is_autovacuums(
    counted: int, written: int, tuples: float, never: bool, stale: bool
) -> None:
    assert statistics.is_stale(counted, written, tuples, never) is stale


def _round(engine: Engine, written: dict[str, int]) -> list[str]:
    """One round by hand, once a round of an earlier test's writes has let go."""
    deadline = time.monotonic() + 30
    while (done := statistics.analyse_stale(engine, written)) is None:
        assert time.monotonic() < deadline, "another round held the lock for 30 s"
        time.sleep(0.1)
    return done
