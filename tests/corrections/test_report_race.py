"""Issue 14 item 7: twenty identical error reports sent at the same moment make one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from medcard.corrections import service
from medcard.corrections.acting import ReportError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from tests.corrections.conftest import first, patient_id, system

SUBMISSIONS = 20
TASK_TYPES = "https://medcard.example/fhir/CodeSystem/task-type"
INPUTS = "https://medcard.example/fhir/CodeSystem/correction-input"


def test_twenty_identical_reports_at_once_make_one(
    engine: Engine, demo: None, repo_of: Callable[[str], Repository]
) -> None:
    pid = patient_id(engine)
    entry = first(engine, "Immunization", pid)
    repos = [repo_of("patient") for _ in range(SUBMISSIONS)]  # one per request, as pages do
    start = threading.Barrier(SUBMISSIONS)

    def submit(i: int) -> str:
        start.wait()
        try:
            return service.file_report(
                repos[i], service.NewReport(pid, [entry], "did-not-happen", "clinic")
            )
        except ReportError as exc:
            return f"refused {exc.status} {exc.key}"

    with ThreadPoolExecutor(SUBMISSIONS) as pool:
        answers = list(pool.map(submit, range(SUBMISSIONS)))
    refused = [a for a in answers if a.startswith("refused")]
    assert refused == ["refused 409 corr_err_duplicate"] * (SUBMISSIONS - 1), answers
    found = system(engine).search(
        parse("Task", [("patient", f"Patient/{pid}"), ("input-reference", entry)])
    )
    assert [m.id for m in found.matches] == [a for a in answers if not a.startswith("refused")]


def test_twenty_identical_reports_posted_to_the_api_at_once_make_one(
    engine: Engine, demo: None, live_server: str, token: Callable[..., str]
) -> None:
    """The same, straight over FHIR: the write hook takes the entry locks (PostgreSQL;
    SQLite writers take turns)."""
    import httpx

    pid = patient_id(engine)
    entry = first(engine, "Immunization", pid)
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": TASK_TYPES, "code": "correction"}]},
        "for": {"reference": f"Patient/{pid}"},
        "owner": {"reference": "Organization/org-77-doh"},
        "input": [
            {
                "type": {"coding": [{"system": INPUTS, "code": "disputed-entry"}]},
                "valueReference": {"reference": entry},
            }
        ],
    }
    headers = {
        "Authorization": f"Bearer {token('patient/*.cruds', patient=pid)}",
        "Content-Type": "application/fhir+json",
    }
    start = threading.Barrier(SUBMISSIONS)

    def submit(_: int) -> int:
        with httpx.Client(timeout=60) as http:
            start.wait()
            return http.post(f"{live_server}/fhir/Task", json=task, headers=headers).status_code

    with ThreadPoolExecutor(SUBMISSIONS) as pool:
        statuses = list(pool.map(submit, range(SUBMISSIONS)))
    assert sorted(statuses) == [201] + [409] * (SUBMISSIONS - 1), statuses
    found = system(engine).search(
        parse("Task", [("patient", f"Patient/{pid}"), ("input-reference", entry)])
    )
    assert len(found.matches) == 1
