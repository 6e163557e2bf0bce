"""Exports: `medcard audit export` writes AuditEvent NDJSON that parses as R4(B)
AuditEvent; `medcard audit seal` and `verify` from the command line; /fhir AuditEvent
stays read-only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import Engine
from typer.testing import CliRunner

from medcard.audit import chain, recorder
from medcard.cli.main import app as cli
from medcard.config import Settings
from tests.audit.conftest import FHIR, Entry, Record, Tamper, audit_rows


@pytest.fixture
def run(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MEDCARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MEDCARD_DATABASE_URL", settings.resolved_database_url)
    return CliRunner()


def _micros(year: int, month: int, day: int, hour: int = 12) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp() * 1_000_000)


def _events(text: str) -> list[AuditEvent]:
    return [AuditEvent.model_validate(orjson.loads(line)) for line in text.splitlines() if line]


def test_export_by_patient_writes_audit_events(
    run: CliRunner, record: Record, tmp_path: Path
) -> None:
    record(
        Entry(
            "Practitioner/doc1",
            "pat1",
            purpose="TREAT",
            emergency=True,
            organization="Organization/clinic1",
        ),
        Entry("Practitioner/doc1", "pat1", "search", "Observation"),
    )
    record(Entry("Practitioner/doc1", "pat2"))
    out = tmp_path / "pat1.ndjson"
    result = run.invoke(
        cli, ["audit", "export", "--patient", "pat1", "--format", "ndjson", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    events = _events(out.read_text())
    assert len(events) == 2
    first = orjson.loads(out.read_text().splitlines()[0])
    assert first["agent"][0]["who"] == {"reference": "Practitioner/doc1"}
    assert first["agent"][1]["who"] == {"reference": "Organization/clinic1"}
    codes = [c["code"] for p in first["purposeOfEvent"] for c in p.get("coding", [])]
    assert codes == ["TREAT", "BTG"]
    assert {"reference": "Patient/pat1"} in [e["what"] for e in first["entity"]]
    second = orjson.loads(out.read_text().splitlines()[1])
    assert "purposeOfEvent" not in second


def test_export_to_stdout_since_a_date(run: CliRunner, record: Record) -> None:
    record(Entry("Practitioner/doc1", "pat1", recorded=_micros(2025, 1, 10)))
    record(Entry("Practitioner/doc1", "pat1", recorded=_micros(2025, 3, 10)))
    record(Entry("Practitioner/doc1", "pat2", recorded=_micros(2025, 3, 11)))
    result = run.invoke(cli, ["audit", "export", "--since", "2025-03-01"])
    assert result.exit_code == 0, result.output
    events = _events(result.stdout)
    assert len(events) == 2
    assert all(e.recorded.year == 2025 and e.recorded.month == 3 for e in events)
    until = run.invoke(cli, ["audit", "export", "--since", "2025-01-01", "--until", "2025-03-10"])
    assert len(_events(until.stdout)) == 2


def test_an_export_is_itself_recorded(run: CliRunner, record: Record, engine: Engine) -> None:
    record(Entry("Practitioner/doc1", "pat1"))
    assert run.invoke(cli, ["audit", "export", "--patient", "pat1"]).exit_code == 0
    [entry] = audit_rows(engine, interaction="audit-export")
    assert (entry.actor, entry.patient_id) == ("system:cli", "pat1")


def test_export_csv(run: CliRunner, record: Record) -> None:
    record(Entry("Practitioner/doc1", "pat1", purpose="=HYPERLINK(1)"))
    result = run.invoke(cli, ["audit", "export", "--patient", "pat1", "--format", "csv"])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()[:2]
    assert header.startswith("id,recorded,actor")
    assert "'=HYPERLINK(1)" in row  # a spreadsheet must not run it


def test_export_needs_a_selection_and_valid_dates(run: CliRunner) -> None:
    assert run.invoke(cli, ["audit", "export"]).exit_code != 0
    assert run.invoke(cli, ["audit", "export", "--since", "03/10/2025"]).exit_code != 0
    assert run.invoke(cli, ["audit", "export", "--patient", "p", "--format", "xml"]).exit_code != 0


def test_cli_seal_and_verify(
    run: CliRunner, record: Record, tamper: Tamper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "SEAL_ON_FLUSH", False)
    for i in range(4):
        record(Entry("Practitioner/doc1", f"pat{i}"))
    sealed = run.invoke(cli, ["audit", "seal"])
    assert sealed.exit_code == 0, sealed.output
    assert "sealed 4 entries" in sealed.output
    ok = run.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    head = next(x for x in ok.stdout.splitlines() if x.startswith("head="))[5:]
    assert head.startswith("4:")
    assert run.invoke(cli, ["audit", "verify", "--expect", head]).exit_code == 0
    tamper("UPDATE audit_log SET purpose = 'x' WHERE chain_seq = 2")
    broken = run.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "broken_seq=2" in broken.stdout
    assert "entry" in broken.output
    assert run.invoke(cli, ["audit", "verify", "--expect", "nonsense"]).exit_code == 2


def test_fhir_audit_events_stay_read_only(client: TestClient, record: Record) -> None:
    record(Entry("Practitioner/doc1", "pat1"))
    bundle = client.get("/fhir/AuditEvent", params={"patient": "pat1"}).json()
    assert bundle["total"] == 1
    event = bundle["entry"][0]["resource"]
    AuditEvent.model_validate(event)
    for method, path in (("POST", "/fhir/AuditEvent"), ("PUT", f"/fhir/AuditEvent/{event['id']}")):
        r = client.request(method, path, json=event, headers={"Content-Type": FHIR})
        assert r.status_code == 405
    assert client.delete(f"/fhir/AuditEvent/{event['id']}").status_code == 405
    assert chain.verify(client.app.state.services.engine).ok
