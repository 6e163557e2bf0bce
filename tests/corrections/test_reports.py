"""Filing, routing, review, decision, escalation and purge, through the service with the
demo population: the patient's, the reviewers' and the clinician's own access contexts."""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard.access.roles import Role
from medcard.auth import accounts
from medcard.corrections import service
from medcard.corrections.acting import ReportError
from medcard.corrections.attachments import Upload
from medcard.corrections.authorities import AuthorityType
from medcard.corrections.model import Decision, Status
from medcard.db.tables import audit_log, resource_versions
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.records import calendar, load_card
from tests.corrections.conftest import first, patient_id, system

Repo = Callable[[str], Repository]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _file(repo: Repository, entries: list[str], authority: str = "clinic", **kw: object) -> str:
    pid = patient_id(repo.engine)
    return service.file_report(
        repo,
        service.NewReport(
            pid,
            entries,
            str(kw.pop("problem", "did-not-happen")),
            authority,
            **kw,  # type: ignore[arg-type]
        ),
    )


def _task(engine: Engine, task_id: str) -> dict[str, object]:
    return system(engine).read("Task", task_id).json()


def test_routes_to_each_of_the_five_authorities(
    engine: Engine, demo: None, repo_of: Repo, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    routes = service.authorities_for(repo_of("patient"), pid)
    assert set(routes) == set(AuthorityType)
    clinic = system(engine).read("Patient", pid).json()["managingOrganization"]["reference"]
    assert routes[AuthorityType.CLINIC].ref == clinic
    assert routes[AuthorityType.MINISTRY].ref == "Organization/org-77-doh"
    assert routes[AuthorityType.WATCHDOG].ref == "Organization/org-77-rzn"
    assert routes[AuthorityType.PROSECUTOR].ref == "Organization/org-77-prosecutor"
    assert routes[AuthorityType.INSURER].ref.startswith("Organization/org-77-smo-")
    reviewer = {
        AuthorityType.CLINIC: clinic_reviewer,
        AuthorityType.MINISTRY: "reviewer-ministry",
        AuthorityType.INSURER: "reviewer-insurer",
        AuthorityType.WATCHDOG: "reviewer-watchdog",
        AuthorityType.PROSECUTOR: "reviewer-prosecutor",
    }
    entries = [
        first(engine, t, pid)
        for t in ("Immunization", "Condition", "Encounter", "DiagnosticReport", "MedicationRequest")
    ]
    for kind, ref in zip(AuthorityType, entries, strict=True):
        task_id = _file(repo_of("patient"), [ref], kind.value)
        assert _task(engine, task_id)["owner"]["reference"] == routes[kind].ref  # type: ignore[index]
        # exactly that authority's queue, nobody else's
        for other, login in reviewer.items():
            ids = [r.id for r in service.queue(repo_of(login))]
            assert (task_id in ids) == (other == kind), (kind, other)


def test_accepted_vaccination_leaves_every_view_and_is_due_again(
    engine: Engine, demo: None, repo_of: Repo, clinic_reviewer: str, client: TestClient
) -> None:
    pid = patient_id(engine)
    patient = repo_of("patient")
    before = {(d.vaccine, d.dose, d.revaccination): d for d in calendar(load_card(patient, pid))}
    given = next(
        k for k, d in before.items() if d.entry is not None and d.entry.resource.get("performer")
    )
    ref = f"Immunization/{before[given].entry.id}"  # type: ignore[union-attr]
    task_id = _file(patient, [ref], comment="Эту прививку мне не делали")
    reviewer = repo_of(clinic_reviewer)
    service.start_review(reviewer, task_id)
    service.decide(
        reviewer, task_id, service.Ruling("accepted", "Подтверждено журналом", [], {}, {}), "Орлова"
    )
    task = _task(engine, task_id)
    assert task["status"] == "completed"
    rtype, rid = ref.split("/")
    # gone for the patient, the doctor, the API (read, search, $everything, history)
    for login in ("patient", "doctor"):
        with pytest.raises(FhirError) as err:
            repo_of(login).read(rtype, rid)
        assert err.value.status == 404
    assert client.get(f"/fhir/{ref}").status_code == 404
    bundle = client.get(f"/fhir/Immunization?patient={pid}&_count=500").json()
    assert rid not in {e["resource"]["id"] for e in bundle.get("entry", [])}
    everything = client.get(f"/fhir/Patient/{pid}/$everything?_count=5000").json()
    assert rid not in {e["resource"]["id"] for e in everything.get("entry", [])}
    history = client.get("/fhir/Immunization/_history?_count=1000").json()
    assert rid not in {e["resource"]["id"] for e in history.get("entry", []) if "resource" in e}
    card = load_card(patient, pid)
    assert card.entry(rtype, rid) is None
    after = {(d.vaccine, d.dose, d.revaccination): d for d in calendar(card)}
    assert after[given].entry is None
    assert after[given].status in ("due", "overdue"), after[given].status  # due again
    # an auditor still reads it, with the Provenance naming the decision
    auditor = system(engine)
    auditor.include_hidden = True
    assert auditor.read(rtype, rid).json()["status"] == "entered-in-error"
    prov = next(o for o in task["output"] if o["type"]["coding"][0]["code"] == "provenance")  # type: ignore[union-attr,index]
    provenance = (
        system(engine).read("Provenance", prov["valueReference"]["reference"].split("/")[1]).json()
    )
    assert provenance["entity"][0]["what"]["reference"] == f"Task/{task_id}"
    assert provenance["reason"][0]["text"] == "Подтверждено журналом"
    # the author clinician and their organisation are told
    author = auditor.read(rtype, rid).json()["performer"][0]["actor"]["reference"]
    accounts.create_account(
        engine, "author@medcard.example", "x" * 12, Role.PRACTITIONER, fhir_ref=author
    )
    notices = service.author_notices(repo_of("author"))
    assert any(n.task_id == task_id and n.kind == "correction" for n in notices)


def test_rejection_then_escalation_carries_the_history(
    engine: Engine, demo: None, repo_of: Repo, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    ref = first(engine, "Condition", pid)
    task_id = _file(repo_of("patient"), [ref], problem="wrong-data", correct_value="Другой диагноз")
    service.ask(
        repo_of(clinic_reviewer), task_id, "patient", "Когда был поставлен диагноз?", "Орлова"
    )
    assert _task(engine, task_id)["status"] == "on-hold"
    service.answer(repo_of("patient"), task_id, "В 2019 году, в другой клинике", "Пациент")
    assert _task(engine, task_id)["status"] == "in-progress"
    with pytest.raises(ReportError) as err:
        service.escalate(repo_of("patient"), task_id, "ministry")
    assert err.value.key == "corr_err_not_escalable"
    service.decide(
        repo_of(clinic_reviewer),
        task_id,
        service.Ruling("rejected", "Диагноз подтверждён", [], {}, {}),
        "",
    )
    report = service.load_report(repo_of("patient"), task_id)
    assert report.decision == Decision.REJECTED
    assert report.reason == "Диагноз подтверждён"
    assert repo_of("patient").read(*ref.split("/")).json()  # still in the card
    new_id = service.escalate(repo_of("patient"), task_id, "ministry")
    new = service.load_report(repo_of("reviewer-ministry"), new_id)
    assert new.previous == f"Task/{task_id}"
    assert new.entries == [ref]
    texts = " ".join(n.text for n in new.notes)
    assert "Когда был поставлен диагноз?" in texts
    assert "Диагноз подтверждён" in texts


def test_overdue_report_is_highlighted_and_escalates(
    engine: Engine, demo: None, repo_of: Repo, clinic_reviewer: str, settings: object
) -> None:
    pid = patient_id(engine)
    ref = first(engine, "Immunization", pid)
    task_id = _file(repo_of("patient"), [ref])
    sys = system(engine)
    task = sys.read("Task", task_id).json()
    task["authoredOn"] = "2020-01-01T00:00:00+00:00"
    task["restriction"] = {"period": {"end": "2020-01-31T00:00:00+00:00"}}
    from medcard.corrections.acting import acting

    with acting(engine, sys.ctx, "test: backdate") as svc:
        svc.update("Task", task_id, task)
    queue = service.queue(repo_of(clinic_reviewer))
    assert queue[0].id == task_id
    assert queue[0].overdue
    months = service.figures(queue)
    assert months[-1].month == "2020-01"
    assert months[-1].open_overdue == 1
    new_id = service.escalate(repo_of("patient"), task_id, "watchdog")
    old = service.load_report(repo_of("patient"), task_id)
    assert old.status == Status.ESCALATED
    assert old.escalated_to == f"Task/{new_id}"


def test_purge_leaves_only_the_audit_fact(
    engine: Engine, demo: None, repo_of: Repo, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    ref = first(engine, "Condition", pid)
    task_id = _file(repo_of("patient"), [ref], problem="not-mine")
    service.decide(
        repo_of(clinic_reviewer),
        task_id,
        service.Ruling("accepted", "Запись другого пациента", [], {ref: "purge"}, {}),
        "",
    )
    rtype, rid = ref.split("/")
    with engine.connect() as conn:
        contents = (
            conn.execute(
                select(resource_versions.c.content).where(
                    resource_versions.c.resource_type == rtype, resource_versions.c.id == rid
                )
            )
            .scalars()
            .all()
        )
        purge = conn.execute(
            select(audit_log.c.interaction).where(
                audit_log.c.resource_id == rid, audit_log.c.interaction == "purge"
            )
        ).all()
    assert contents
    assert all(
        set(orjson.loads(c)) <= {"resourceType", "id", "meta", "verificationStatus"}
        for c in contents
    )
    assert purge


def test_move_copies_the_entry_to_the_right_card(
    engine: Engine, demo: None, repo_of: Repo, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    other = patient_id(engine, "parent")
    snils = next(
        i["value"]
        for i in system(engine).read("Patient", other).json()["identifier"]
        if i["system"] == "urn:oid:1.2.643.100.3"
    )
    ref = first(engine, "Immunization", pid)
    task_id = _file(repo_of("patient"), [ref], problem="not-mine")
    service.decide(
        repo_of(clinic_reviewer),
        task_id,
        service.Ruling(
            "accepted", "Прививка сделана другому пациенту", [], {ref: "move"}, {ref: snils}
        ),
        "",
    )
    moved = service.load_report(repo_of("patient"), task_id).moved
    assert len(moved) == 1
    copy = repo_of("parent").read(*moved[0].split("/")).json()
    assert copy["patient"]["reference"] == f"Patient/{other}"


def test_bad_reports_are_refused_without_any_change(
    engine: Engine, demo: None, repo_of: Repo, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    other = patient_id(engine, "parent")
    mine = first(engine, "Immunization", pid)
    theirs = first(engine, "Immunization", other)

    def count() -> int:
        with engine.connect() as conn:
            return len(conn.execute(select(resource_versions.c.id)).all())

    n = count()
    cases = [
        ([], {}, "corr_err_no_entries"),
        ([theirs], {}, "corr_err_unknown_entry"),
        (["Patient/" + pid], {}, "corr_err_bad_entry"),
        ([mine], {"uploads": [Upload("a.exe", "image/png", b"MZ\x90\x00")]}, "corr_err_file_type"),
        (
            [mine],
            {"uploads": [Upload("big.png", "image/png", PNG + b"\x00" * (5 * 2**20))]},
            "corr_err_file_size",
        ),
    ]
    for entries, kw, key in cases:
        with pytest.raises(ReportError) as err:
            _file(repo_of("patient"), entries, **kw)
        assert err.value.key == key
    assert count() == n
    _file(repo_of("patient"), [mine], uploads=[Upload("scan.png", "image/png", PNG)])
    n = count()
    with pytest.raises(ReportError) as err:
        _file(repo_of("patient"), [mine], "ministry")
    assert err.value.key == "corr_err_duplicate"
    assert count() == n


def test_reviewers_reach_only_their_reports_and_disputed_entries(
    engine: Engine, demo: None, repo_of: Repo, clinic_reviewer: str
) -> None:
    pid = patient_id(engine)
    disputed = first(engine, "Immunization", pid)
    task_id = _file(repo_of("patient"), [disputed], uploads=[Upload("scan.png", "image/png", PNG)])
    reviewer = repo_of(clinic_reviewer)
    assert reviewer.read(*disputed.split("/")).json()
    report = service.reviewable(reviewer, task_id)
    assert (
        base64.b64decode(
            reviewer.read("Binary", report.attachments[0].ref.split("/")[1]).json()["data"]
        )
        == PNG
    )
    for ref in (first(engine, "Condition", pid), f"Patient/{pid}", first(engine, "Encounter", pid)):
        with pytest.raises(FhirError) as err:
            reviewer.read(*ref.split("/"))
        assert err.value.status == 404
    found = reviewer.search(parse("Immunization", [("patient", f"Patient/{pid}")])).matches
    assert [m.id for m in found] == [disputed.split("/")[1]]
    # another authority's reviewer neither sees nor decides it; a decided report stays decided
    with pytest.raises(ReportError) as err:
        service.decide(
            repo_of("reviewer-ministry"), task_id, service.Ruling("accepted", "", [], {}, {}), ""
        )
    assert err.value.status == 404
    service.decide(reviewer, task_id, service.Ruling("rejected", "Нет оснований", [], {}, {}), "")
    with pytest.raises(ReportError) as err:
        service.decide(reviewer, task_id, service.Ruling("accepted", "", [], {}, {}), "")
    assert err.value.key == "corr_err_decided"
    assert _task(engine, task_id)["status"] == "rejected"


def test_reports_filed_over_the_api_are_checked_and_cannot_be_forged(
    engine: Engine, demo: None, client: TestClient, token: Callable[..., str]
) -> None:
    pid = patient_id(engine)
    ref = first(engine, "Immunization", pid)
    other_ref = first(engine, "Immunization", patient_id(engine, "parent"))
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [
                {
                    "system": "https://medcard.example/fhir/CodeSystem/task-type",
                    "code": "correction",
                }
            ]
        },
        "for": {"reference": f"Patient/{pid}"},
        "owner": {"reference": "Organization/org-77-doh"},
        "input": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "https://medcard.example/fhir/CodeSystem/correction-input",
                            "code": "disputed-entry",
                        }
                    ]
                },
                "valueReference": {"reference": ref},
            }
        ],
    }
    headers = {"Authorization": f"Bearer {token('patient/*.cruds', patient=pid)}"}
    no_entries = {**task, "input": []}
    assert client.post("/fhir/Task", json=no_entries, headers=headers).status_code == 422
    foreign = {**task, "input": [{**task["input"][0], "valueReference": {"reference": other_ref}}]}  # type: ignore[index]
    assert client.post("/fhir/Task", json=foreign, headers=headers).status_code == 422
    wrong_owner = {**task, "owner": {"reference": "Organization/org-78-doh"}}
    assert client.post("/fhir/Task", json=wrong_owner, headers=headers).status_code == 422
    made = client.post("/fhir/Task", json=task, headers=headers)
    assert made.status_code == 201, made.text
    body = made.json()
    forged = {**body, "status": "completed"}
    assert client.put(f"/fhir/Task/{body['id']}", json=forged, headers=headers).status_code == 403
    assert client.post("/fhir/Task", json=task, headers=headers).status_code == 409
    # Issue 14: deletes pass the same hooks as writes.  The patient entered the report
    # (so the tag would let them delete it) and a system token may delete anything
    # else, yet a routed report ends only through its review, its history kept.
    for who in (headers, {}):
        gone = client.delete(f"/fhir/Task/{body['id']}", headers=headers if who else {})
        assert gone.status_code == 403, gone.text
        assert "never deleted" in gone.json()["issue"][0]["diagnostics"]
    kept = client.get(f"/fhir/Task/{body['id']}")
    assert kept.status_code == 200
    assert kept.json()["meta"]["versionId"] == body["meta"]["versionId"]
    assert client.get(f"/fhir/Task/{body['id']}/_history").json()["total"] == 1
