"""Lines from the demo's entries: every billable kind, tariffs, idempotence, bad input."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.billing import generate, nomenclature, prices
from medcard.billing.model import BILLABLE, LINE_SYSTEM, NOT_BILLABLE, read_line
from medcard.fhir.search.params import parse
from tests.billing.support import lines_of
from tests.corrections.conftest import patient_id, system


def _kinds(engine: Engine) -> Counter[str]:
    out: Counter[str] = Counter()
    for line in lines_of(engine):
        rtype = line.source.split("/", 1)[0]
        if rtype == "Encounter":
            kind = "case" if line.system == nomenclature.CASE_SYSTEM else "visit"
            out[f"Encounter:{'hosp' if line.code == 'hosp' else kind}"] += 1
        elif rtype == "DiagnosticReport":
            out["lab-panel" if line.code.startswith("B03") else "imaging"] += 1
        else:
            out[rtype] += 1
    return out


def test_demo_entries_of_every_kind_produce_their_lines(engine: Engine, demo: None) -> None:
    kinds = _kinds(engine)
    for kind in ("Encounter:visit", "Encounter:case", "lab-panel", "Observation", "Immunization"):
        assert kinds[kind] > 0, kinds
    assert kinds["imaging"] + kinds["Encounter:hosp"] > 0, kinds
    repo = system(engine)
    for line in lines_of(engine):
        # linked to what it stands for, priced at the region's tariff
        assert line.entries
        assert line.source in line.entries
        for ref in line.entries:
            rtype, rid = ref.split("/", 1)
            assert repo.read(rtype, rid).patient_id == line.patient_id
        region = line.resource["extension"][1]["valueCoding"]["code"]
        assert line.unit_price == prices.default_tariff(region, line.code)
        assert line.amount == (line.unit_price * line.quantity).quantize(Decimal("0.01"))
        assert line.org_ref.startswith("Organization/")
        if line.status == BILLABLE:
            assert line.insurer_ref.startswith("Organization/")
            assert line.resource["account"][0]["reference"].startswith("Account/oms-")
        else:
            assert line.status == NOT_BILLABLE
            assert line.note


def test_generation_is_idempotent(engine: Engine, demo: None) -> None:
    before = {x.id: x.version for x in lines_of(engine)}
    again = generate.run(engine, generate.all_patients(engine))
    assert again.created == 0
    assert again.voided == 0
    assert {x.id: x.version for x in lines_of(engine)} == before
    keys = Counter(
        i["value"]
        for x in lines_of(engine)
        for i in x.resource["identifier"]
        if i["system"] == LINE_SYSTEM
    )
    assert keys
    assert max(keys.values()) == 1


def _new_visit(client: TestClient, pid: str, org: str, day: str = "2026-10-05") -> str:
    resp = client.post(
        "/fhir/Encounter",
        json={
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "serviceType": nomenclature.get("B01.047.002").codeable(),  # type: ignore[union-attr]
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": f"{day}T10:00:00+03:00", "end": f"{day}T10:20:00+03:00"},
            "serviceProvider": {"reference": org},
        },
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _coverage(engine: Engine, pid: str) -> dict[str, Any]:
    found = system(engine).search(parse("Coverage", [("beneficiary", f"Patient/{pid}")]))
    return found.matches[0].json()


def test_patient_without_a_valid_policy_is_flagged_then_billed_once_fixed(
    engine: Engine, demo: None, client: TestClient
) -> None:
    pid = patient_id(engine)
    org = system(engine).read("Patient", pid).json()["managingOrganization"]["reference"]
    cov = _coverage(engine, pid)
    assert (
        client.put(f"/fhir/Coverage/{cov['id']}", json={**cov, "status": "cancelled"}).status_code
        == 200
    )
    enc = _new_visit(client, pid, org)
    out = generate.for_patient(engine, pid)
    line = next(x for x in lines_of(engine, pid) if x.source == f"Encounter/{enc}")
    assert line.status == NOT_BILLABLE
    assert "not active" in line.note
    assert any(
        f.source == f"Encounter/{enc}" and f.key == "bill_flag_policy_inactive" for f in out.flags
    )
    # the registrar records a valid policy: the flagged line becomes billable, once
    assert (
        client.put(f"/fhir/Coverage/{cov['id']}", json={**cov, "status": "active"}).status_code
        == 200
    )
    fixed = generate.for_patient(engine, pid)
    assert fixed.repriced >= 1
    assert fixed.created == 0
    line = next(x for x in lines_of(engine, pid) if x.source == f"Encounter/{enc}")
    assert line.status == BILLABLE
    assert line.insurer_ref == cov["payor"][0]["reference"]


def _line_body(pid: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "ChargeItem",
        "status": "billable",
        "code": nomenclature.get("B01.047.001").codeable(),  # type: ignore[union-attr]
        "subject": {"reference": f"Patient/{pid}"},
        "quantity": {"value": 1},
    }
    body.update(over)
    return body


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        (
            {"code": {"coding": [{"system": nomenclature.NMU_SYSTEM, "code": "Z99.999.999"}]}},
            422,
            "Unknown service code",
        ),
        ({"code": {"text": "приём"}}, 422, "Unknown service code"),
        ({"quantity": {"value": 0}}, 422, "quantity"),
        ({"quantity": {"value": -2}}, 422, "quantity"),
        ({"priceOverride": {"value": -5, "currency": "RUB"}}, 422, "price"),
    ],
)
def test_bad_lines_are_refused_over_the_api(
    engine: Engine, demo: None, client: TestClient, change: dict[str, Any], status: int, needle: str
) -> None:
    pid = patient_id(engine)
    before = len(lines_of(engine, pid))
    resp = client.post("/fhir/ChargeItem", json=_line_body(pid, **change))
    assert resp.status_code == status, resp.text
    assert needle in resp.text
    assert len(lines_of(engine, pid)) == before


def test_a_second_line_for_the_same_entry_and_service_is_refused(
    engine: Engine, demo: None, client: TestClient
) -> None:
    pid = patient_id(engine)
    existing = lines_of(engine, pid)[0]
    key = existing.resource["identifier"][0]
    resp = client.post("/fhir/ChargeItem", json=_line_body(pid, identifier=[key]))
    assert resp.status_code == 409
    assert "already billed" in resp.text
    assert len(lines_of(engine, pid)) == len(lines_of(engine, pid))


def test_a_line_whose_entry_left_the_card_is_voided(
    engine: Engine, demo: None, client: TestClient
) -> None:
    pid = patient_id(engine)
    line = next(x for x in lines_of(engine, pid) if x.source.startswith("Immunization/"))
    imm = client.get(f"/fhir/{line.source}").json()
    assert (
        client.put(f"/fhir/{line.source}", json={**imm, "status": "entered-in-error"}).status_code
        == 200
    )
    out = generate.for_patient(engine, pid)
    assert out.voided == 1
    assert line.id not in {x.id for x in lines_of(engine, pid)}
    repo = system(engine)
    repo.include_hidden = True
    assert read_line(repo.read("ChargeItem", line.id).json()).status == "entered-in-error"


def test_the_periodic_sweep_bills_entries_written_since_the_last_one(
    engine: Engine, demo: None, settings: Any
) -> None:
    import datetime as dt

    from medcard import jobs
    from medcard.billing import jobs as billing_jobs

    saved = (jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime)
    jobs.configure(settings.model_copy(update={"jobs_mode": "immediate"}), engine)
    try:
        repo = system(engine)
        pid = patient_id(engine, "patient")
        before = {x.id for x in lines_of(engine)}
        given = repo.search(parse("Immunization", [("patient", f"Patient/{pid}")])).matches
        assert given, "the demo card has vaccinations"
        copy = {k: v for k, v in given[0].json().items() if k not in ("id", "meta")}
        copy["occurrenceDateTime"] = "2026-11-20"
        with repo.unit_of_work():
            made = repo.create(copy).stored
        outcome = billing_jobs.bill_recent(dt.datetime.now(dt.UTC))
        assert outcome
        new = [x for x in lines_of(engine) if x.id not in before]
        assert any(f"Immunization/{made.id}" in x.entries for x in new), new
        # a second sweep over the same window writes nothing new
        billing_jobs.bill_recent(dt.datetime.now(dt.UTC))
        assert {x.id for x in lines_of(engine)} == {x.id for x in new} | before
    finally:
        jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime = saved
