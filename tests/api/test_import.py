"""`medcard import`: Bundles and NDJSON, bad rows reported with reasons, resumable."""

from __future__ import annotations

from pathlib import Path

import orjson
from rich.console import Console
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from medcard.cli.main import app
from medcard.config import Settings
from medcard.db.tables import import_progress, resources
from medcard.importer import import_paths
from tests import factories

QUIET = Console(quiet=True)


def _count(engine: Engine, rtype: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(resources).where(resources.c.resource_type == rtype)
        ).scalar_one()


def test_ndjson_import_reports_bad_rows_and_keeps_good_ones(engine: Engine, tmp_path: Path) -> None:
    good = [factories.patient(id=f"imp-{i}") for i in range(5)]
    bad_snils = factories.patient(id="imp-bad")
    bad_snils["identifier"][0]["value"] = "11223344500"
    lines = [orjson.dumps(p) for p in good[:3]] + [b"{not json", orjson.dumps(bad_snils)]
    lines += [orjson.dumps(p) for p in good[3:]]
    path = tmp_path / "patients.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = import_paths(engine, [path], console=QUIET)
    assert summary["created"] == 5
    assert summary["failed"] == 2
    reasons = " ".join(summary["reasons"])
    assert "line 4" in reasons
    assert "SNILS" in reasons
    assert _count(engine, "Patient") == 5


def test_transaction_bundle_imports_whole_or_not_at_all(engine: Engine, tmp_path: Path) -> None:
    ok = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:5d0b5a2e-1111-4e1e-9a1a-000000000001", "resource": factories.patient(),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {**factories.observation("x"), "subject": {"reference": "urn:uuid:5d0b5a2e-1111-4e1e-9a1a-000000000001"}},
             "request": {"method": "POST", "url": "Observation"}},
        ],
    }  # fmt: skip
    broken = orjson.loads(orjson.dumps(ok))
    broken["entry"][1]["resource"]["status"] = "bogus"
    (tmp_path / "a.json").write_bytes(orjson.dumps(ok))
    (tmp_path / "b.json").write_bytes(orjson.dumps(broken))
    summary = import_paths(engine, [tmp_path], console=QUIET)
    assert summary["files"] == 2
    assert summary["created"] == 2
    assert summary["failed"] == 2
    assert _count(engine, "Observation") == 1


def test_import_resumes_where_it_stopped(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "p.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(factories.patient(id=f"res-{i}")) for i in range(4)))
    quiet = QUIET
    first = import_paths(engine, [path], console=quiet)
    assert first["created"] == 4
    with engine.connect() as conn:
        assert conn.execute(select(import_progress.c.position)).scalar_one() == 4
    again = import_paths(engine, [path], console=quiet)
    assert again["created"] + again["updated"] == 0
    restarted = import_paths(engine, [path], console=quiet, restart=True)
    assert restarted["updated"] == 4


def test_cli_import_prints_a_summary_and_fails_on_bad_input(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b'{"resourceType": "Nope"}\n')
    env = {
        "MEDCARD_DATA_DIR": str(settings.data_dir),
        "MEDCARD_DATABASE_URL": settings.resolved_database_url,
    }
    result = CliRunner().invoke(app, ["import", str(path)], env=env)
    assert result.exit_code == 1
    assert "Import summary" in result.output
    assert "Nope" in result.output
