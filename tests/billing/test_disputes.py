"""The dispute cycle with the insurer, the insurer's figures, and who sees which lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from medcard.access.roles import Role
from medcard.auth import accounts
from medcard.billing import disputes, figures, listing
from medcard.billing.model import BILLABLE, VOIDED, BillingError
from medcard.corrections import service
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from tests.billing.support import hidden_line, lines_of
from tests.corrections.conftest import account_of, patient_id, system

Repos = Callable[[str], Repository]


def _billable(engine: Engine, pid: str, kind: str = "Encounter/") -> str:
    return next(
        x.id for x in lines_of(engine, pid) if x.status == BILLABLE and x.source.startswith(kind)
    )


def test_dispute_accepted_by_the_insurer_voids_the_line_and_its_entries(
    engine: Engine, demo: None, repo_of: Repos
) -> None:
    pid = patient_id(engine)
    line_id = _billable(engine, pid)
    patient = repo_of("patient")
    line = disputes.line_of(patient, pid, line_id)
    task_id = disputes.dispute(patient, pid, line_id, comment="Я был в отпуске")
    report = service.load_report(patient, task_id)
    insurer = account_of(engine, "reviewer-insurer")
    assert report.owner_ref == insurer.organization_ref == line.insurer_ref
    assert report.entries[0] == f"ChargeItem/{line_id}"
    assert line.source in report.entries
    assert report.problem == "did-not-happen"
    # the insurer's staff see the report, the line and (now) the disputed entries
    reviewer = repo_of("reviewer-insurer")
    assert task_id in {r.id for r in service.queue(reviewer)}
    month = figures.monthly(reviewer)
    cell = next(
        o for m in month if m.month == line.month for o in m.orgs if o.org_ref == line.org_ref
    )
    assert cell.disputed >= line.amount
    assert cell.voided == 0
    # a second dispute of the same line while the first is open is refused
    with pytest.raises(BillingError) as err:
        disputes.dispute(repo_of("patient"), pid, line_id)
    assert err.value.key == "bill_err_disputed"
    service.start_review(reviewer, task_id)
    service.decide(reviewer, task_id, service.Ruling("accepted", "", [], {}, {}), "Петрова")
    # voided, and its entries left the card
    assert hidden_line(engine, line_id).status == VOIDED
    for ref in report.entries[1:]:
        rtype, rid = ref.split("/", 1)
        with pytest.raises(FhirError):
            repo_of("patient").read(rtype, rid)
    shown = listing.patient_lines(repo_of("patient"), pid, listing.Period())
    assert line_id not in {x.id for x in shown.lines}
    cell = next(
        o
        for m in figures.monthly(repo_of("reviewer-insurer"))
        if m.month == line.month
        for o in m.orgs
        if o.org_ref == line.org_ref
    )
    assert cell.voided >= line.amount
    assert cell.voided_lines >= 1
    assert cell.net == cell.billed - cell.voided
    # a voided line cannot be disputed again
    with pytest.raises(BillingError) as err:
        disputes.dispute(repo_of("patient"), pid, line_id)
    assert err.value.key == "bill_err_voided"


def test_a_line_of_another_card_cannot_be_disputed(
    engine: Engine, demo: None, repo_of: Repos
) -> None:
    pid = patient_id(engine)
    others = [x for x in lines_of(engine) if x.patient_id != pid and x.status == BILLABLE]
    patient = repo_of("patient")
    dependants = patient.ctx.patient_ids
    other = next(x for x in others if x.patient_id not in dependants)
    before = len(system(engine).search(parse("Task", [("_count", "100")])).matches)
    for target_pid in (pid, other.patient_id):
        with pytest.raises((BillingError, FhirError)):
            disputes.dispute(repo_of("patient"), target_pid, other.id)
    with pytest.raises(BillingError) as err:
        disputes.dispute(repo_of("patient"), pid, "no-such-line")
    assert err.value.key == "bill_err_no_line"
    assert len(system(engine).search(parse("Task", [("_count", "100")])).matches) == before


def _search(repo: Repository, rtype: str = "ChargeItem") -> list[str]:
    found = repo.search(parse(rtype, [("_count", "1000")], max_count=1000)).matches
    return [m.id for m in found]


def test_a_patient_sees_only_their_own_lines(engine: Engine, demo: None, repo_of: Repos) -> None:
    patient = repo_of("patient")
    mine = {x.id for x in lines_of(engine) if x.patient_id in patient.ctx.patient_ids}
    assert mine
    assert set(_search(patient)) == mine
    other = next(x for x in lines_of(engine) if x.patient_id not in patient.ctx.patient_ids)
    with pytest.raises(FhirError) as err:
        patient.read("ChargeItem", other.id)
    assert err.value.status == 404


def test_insurer_staff_see_only_their_insured_and_nothing_clinical(
    engine: Engine, demo: None, repo_of: Repos
) -> None:
    insurer = account_of(engine, "reviewer-insurer").organization_ref
    reviewer = repo_of("reviewer-insurer")
    theirs = {x.id for x in lines_of(engine) if x.insurer_ref == insurer and x.status == BILLABLE}
    assert theirs
    assert set(_search(reviewer)) == theirs
    assert {x.id for x in figures.billed_lines(reviewer)} == theirs
    line = next(x for x in lines_of(engine) if x.id in theirs)
    rtype, rid = line.source.split("/", 1)
    with pytest.raises(FhirError):
        reviewer.read(rtype, rid)  # the encounter behind the line stays closed
    assert _search(reviewer, "Encounter") == []
    # another authority's reviewers see no lines at all
    assert _search(repo_of("reviewer-ministry")) == []
    with pytest.raises(BillingError):
        figures.billed_lines(repo_of("patient"))


def test_a_polyclinic_admin_sees_only_its_own_billing(
    engine: Engine, demo: None, repo_of: Repos
) -> None:
    busiest = Counter(x.org_ref for x in lines_of(engine)).most_common(1)[0][0]
    org = account_of(engine, "admin").organization_ref
    if not any(x.org_ref == org for x in lines_of(engine)):
        org = busiest  # a small demo may bill nothing at admin@'s polyclinic
        accounts.create_account(
            engine,
            "admin-billing@medcard.example",
            "medcard-demo",
            Role.ORG_ADMIN,
            organization_ref=org,
        )
        admin = repo_of("admin-billing")
    else:
        admin = repo_of("admin")
    own = {x.id for x in lines_of(engine) if x.org_ref == org}
    assert own
    assert set(_search(admin)) == own
    assert any(x.org_ref != org for x in lines_of(engine))  # there is other billing to hide
    with pytest.raises(FhirError):
        admin.search(parse("Encounter", []))
    line = next(x for x in lines_of(engine) if x.org_ref != org)
    with pytest.raises(FhirError):
        admin.read("ChargeItem", line.id)
    with pytest.raises(FhirError), admin.unit_of_work():
        admin.update("ChargeItem", line.id, {**line.resource, "status": "billed"})
