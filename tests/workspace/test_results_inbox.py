"""The doctor's inbox of new lab results: counted, abnormal first, each opens the
report, acknowledging is recorded (a Task) and takes it off the list (issue 20)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard import entries
from medcard.db.tables import audit_log
from medcard.entries.forms import TZ
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.records.results_inbox import ACK_CODE, ACK_SYSTEM
from medcard.signing import KeyStore
from tests.workspace.conftest import csrf_of

ORDER = {"panel": "cbc", "performer": "org-77-ckdl", "priority": "routine"}


def _result(repo: Repository, keys: KeyStore, pid: str, hgb: str) -> str:
    entries.submit(repo, keys, "lab_order", pid, ORDER, uuid.uuid4().hex)
    order = entries.open_orders(repo, pid, "108252007")[0]
    done = entries.submit(
        repo,
        keys,
        "lab_result",
        pid,
        {
            "order": order["id"],
            "panel": "cbc",
            "collected": dt.datetime.now(TZ).strftime("%Y-%m-%dT%H:%M"),
            "value_hgb": hgb,
            "unit_hgb": "г/л",
        },
        uuid.uuid4().hex,
    )
    return done.written[0].id


def _inbox(html: str) -> list[str]:
    section = html.split('class="ws-inbox"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'/entry/DiagnosticReport/([^"]+)"', section)


def test_new_results_wait_abnormal_first_until_acknowledged(
    patient_id: str,
    signed_in: Callable[[str], TestClient],
    repo_of: Callable[[str], Repository],
    keys: KeyStore,
    engine: Engine,
) -> None:
    repo = repo_of("doctor")
    normal = _result(repo, keys, patient_id, "140")
    low = _result(repo, keys, patient_id, "95")  # below the reference range
    doc = signed_in("doctor")
    home = doc.get("/workspace").text
    assert 'id="inbox-count">(2)' in home
    assert _inbox(home) == [low, normal]  # abnormal first, though older
    assert "есть отклонения" in home
    assert (
        doc.get(f"/workspace/patients/{patient_id}/entry/DiagnosticReport/{low}").status_code == 200
    )

    r = doc.post(f"/workspace/results/{low}/acknowledge", data={"csrf_token": csrf_of(home)})
    assert r.status_code == 303
    after = doc.get(r.headers["location"]).text
    assert "вы ознакомились с результатом" in after
    assert _inbox(after) == [normal]
    assert 'id="inbox-count">(1)' in after
    # recorded as a Task the doctor owns, focused on the report, and audited
    tasks = repo.search(parse("Task", [("code", f"{ACK_SYSTEM}|{ACK_CODE}")])).matches
    (task,) = [t.json() for t in tasks]
    assert task["focus"] == {"reference": f"DiagnosticReport/{low}"}
    assert task["owner"]["reference"].startswith("Practitioner/")
    assert task["status"] == "completed"
    with engine.connect() as conn:
        created = conn.execute(
            select(audit_log.c.resource_id).where(
                audit_log.c.interaction == "create", audit_log.c.resource_type == "Task"
            )
        ).scalars()
        assert tasks[0].id in set(created)
    # acknowledging twice records nothing more
    doc.post(f"/workspace/results/{low}/acknowledge", data={"csrf_token": csrf_of(after)})
    assert len(repo.search(parse("Task", [("code", f"{ACK_SYSTEM}|{ACK_CODE}")])).matches) == 1


def test_acknowledging_needs_csrf_and_a_visible_report(
    patient_id: str, signed_in: Callable[[str], TestClient]
) -> None:
    doc = signed_in("doctor")
    home = doc.get("/workspace").text
    assert doc.post("/workspace/results/nope/acknowledge", data={}).status_code == 403
    r = doc.post("/workspace/results/nope/acknowledge", data={"csrf_token": csrf_of(home)})
    assert r.status_code == 404
    registrar = signed_in("registrar")
    page = registrar.get("/workspace").text
    assert "ws-inbox" not in page
    r = registrar.post("/workspace/results/x/acknowledge", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 403
