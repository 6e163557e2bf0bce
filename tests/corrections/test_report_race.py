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
