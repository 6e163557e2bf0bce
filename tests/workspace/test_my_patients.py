"""The workspace home shows the doctor their own attached patients: counted, paged,
filtered by name, and only theirs (issue 20, item 2)."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard import attachment
from medcard.access.context import AccessContext
from medcard.db.tables import audit_log
from medcard.demo.accounts import DEMO_PRACTITIONER
from medcard.fhir.store.repository import Repository
from tests import factories

MINE = f"Practitioner/{DEMO_PRACTITIONER}"


def _attached(engine: Engine, n: int, family: str, gp: str = DEMO_PRACTITIONER) -> list[str]:
    """n new cards attached to gp12 with ``gp`` as their district doctor."""
    repo = Repository(engine, AccessContext.system())
    made = []
    try:
        for i in range(n):
            person = attachment.parse_person(
                {
                    "family": family,
                    "given": f"Пациент{'абвгдежзиклмнопрстуфхцчшщ'[i]}",
                    "birth_date": f"19{50 + i}-03-0{1 + i % 9}",
                    "gender": "female",
                    "snils": factories.snils(),
                }
            )
            done = attachment.attach(
                repo, "org-77-gp12", person=person, practitioner_id=gp, confirm_new=True
            )
            made.append(done.patient_id)
    finally:
        repo.close()
    return made


def _listed(html: str) -> list[str]:
    section = html.split('class="ws-mine"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'href="/workspace/patients/([^"/]+)"', section)


def _count(html: str) -> int:
    m = re.search(r"<h2 id=\"mine-title\">[^<]*<span class=\"ws-count\">\((\d+)\)</span>", html)
    assert m, html
    return int(m.group(1))


def test_doctor_sees_own_attached_patients_paged(
    demo: None, signed_in: Callable[[str], TestClient], engine: Engine
) -> None:
    mine = _attached(engine, 23, "Списочная")
    others = _attached(engine, 2, "Списочная", gp="prac-77-gp12-therapist-2")
    doc = signed_in("doctor")
    first = doc.get("/workspace")
    assert first.status_code == 200
    assert "Мои пациенты" in first.text
    total = _count(first.text)
    assert total >= 23
    page1 = _listed(first.text)
    assert len(page1) == 20
    assert 'rel="next"' in first.text
    seen = list(page1)
    page_no = 2
    while True:
        r = doc.get("/workspace", params={"page_no": str(page_no)})
        assert r.status_code == 200
        rows = _listed(r.text)
        seen += rows
        if 'rel="next"' not in r.text:
            break
        page_no += 1
    assert len(seen) == total
    assert len(set(seen)) == total  # every patient once
    assert set(mine) <= set(seen)
    assert not set(others) & set(seen)  # another doctor's patients are not in the list


def test_the_list_filters_by_name(
    demo: None, signed_in: Callable[[str], TestClient], engine: Engine
) -> None:
    wanted = _attached(engine, 3, "Фильтрова")
    _attached(engine, 2, "Другова")
    doc = signed_in("doctor")
    r = doc.get("/workspace", params={"name": "Фильтрова"})
    assert r.status_code == 200
    assert sorted(_listed(r.text)) == sorted(wanted)
    assert _count(r.text) == 3
    assert 'value="Фильтрова"' in r.text
    assert "Прикреплённых пациентов не найдено" in doc.get("/workspace?name=Несуществующая").text
    # the list is read through the gate and audited as a Patient search by the doctor
    with engine.connect() as conn:
        actors = conn.execute(
            select(audit_log.c.actor).where(
                audit_log.c.interaction == "search", audit_log.c.resource_type == "Patient"
            )
        ).scalars()
        assert MINE in set(actors)


def test_registrars_get_no_patient_list(demo: None, signed_in: Callable[[str], TestClient]) -> None:
    html = signed_in("registrar").get("/workspace").text
    assert "ws-mine" not in html
    assert "Поиск пациента" in html
