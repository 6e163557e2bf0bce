"""The card pages over HTTP: every section renders the demo patient's data, nothing of
another patient is reachable by URL, bad input gets a readable page and never a 500."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.records.sections import SECTIONS
from tests.records.conftest import patient_id

Client = Callable[[str], TestClient]


def test_card_redirects_to_own_card(demo: None, engine: Engine, signed_in: Client) -> None:
    web = signed_in("patient")
    resp = web.get("/card")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/card/{patient_id(engine, 'patient')}"


def test_overview_shows_attachment_diagnoses_and_recent_events(
    demo: None, engine: Engine, signed_in: Client
) -> None:
    pid = patient_id(engine, "patient")
    resp = signed_in("patient").get(f"/card/{pid}")
    assert resp.status_code == 200, resp.text
    html = resp.text
    assert "Поликлиника" in html
    assert "Лечащий врач" in html
    assert "Действующие диагнозы" in html
    assert "Последние события" in html
    assert "поликлиника" in html.lower()


@pytest.mark.parametrize("section", [s.key for s in SECTIONS])
def test_every_section_renders(demo: None, engine: Engine, signed_in: Client, section: str) -> None:
    pid = patient_id(engine, "patient")
    resp = signed_in("patient").get(f"/card/{pid}/{section}")
    assert resp.status_code == 200, resp.text
    assert "<h1>" in resp.text


def test_every_entry_of_the_card_opens(demo: None, engine: Engine, signed_in: Client) -> None:
    pid = patient_id(engine, "patient")
    web = signed_in("patient")
    html = web.get(f"/card/{pid}/timeline").text
    links = set(re.findall(rf'href="(/card/{pid}/entry/[A-Za-z]+/[^"]+)"', html))
    assert len(links) >= 10
    for link in sorted(links):
        resp = web.get(link)
        assert resp.status_code == 200, (link, resp.text[:500])


def _other_patient_ids(engine: Engine, mine: str) -> list[str]:
    from sqlalchemy import select

    from medcard.db.tables import resources

    with engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.id).where(resources.c.resource_type == "Patient")
        ).scalars()
        return [r for r in rows if r != mine]


def _some(engine: Engine, rtype: str, patient: str) -> str:
    from sqlalchemy import select

    from medcard.db.tables import resources

    with engine.connect() as conn:
        return str(
            conn.execute(
                select(resources.c.id).where(
                    resources.c.resource_type == rtype, resources.c.patient_id == patient
                )
            )
            .scalars()
            .first()
        )


def test_another_patients_card_entries_and_files_look_not_found(
    demo: None, engine: Engine, signed_in: Client
) -> None:
    mine = patient_id(engine, "patient")
    web = signed_in("patient")
    for other in _other_patient_ids(engine, mine):
        if other in (patient_id(engine, "parent"),):
            continue
        encounter = _some(engine, "Encounter", other)
        urls = [
            f"/card/{other}",
            f"/card/{other}/labs",
            f"/card/{other}/timeline?q=a",
            f"/card/{other}/access-log",
            f"/card/{other}/entry/Encounter/{encounter}",
            # another patient's entry under my own card
            f"/card/{mine}/entry/Encounter/{encounter}",
        ]
        doc = _some(engine, "DocumentReference", other)
        if doc != "None":
            urls += [
                f"/card/{other}/documents/{doc}/download",
                f"/card/{mine}/documents/{doc}/download",
            ]
        for url in urls:
            resp = web.get(url)
            assert resp.status_code == 404, (url, resp.status_code)
            assert "Страница не найдена" in resp.text
            # nothing of the other card shows, beyond the address typed (echoed in links)
            shown = resp.text.replace(url.split("?")[0], "")
            assert encounter not in shown
            assert other not in shown


def test_a_missing_card_looks_the_same_as_someone_elses(
    demo: None, engine: Engine, signed_in: Client
) -> None:
    web = signed_in("patient")
    other = _other_patient_ids(engine, patient_id(engine, "patient"))[0]
    missing = web.get("/card/no-such-patient")
    foreign = web.get(f"/card/{other}")
    assert missing.status_code == foreign.status_code == 404
    assert missing.text.replace("no-such-patient", other) == foreign.text


@pytest.mark.parametrize(
    "suffix",
    [
        "/no-such-section",
        "/labs/nothing/here",
        "/entry/Encounter/does-not-exist",
        "/entry/NotAType/x",
        "/entry/encounter/lowercase",
        "/entry/Encounter/" + "x" * 200,
        "/labs/trend/00000-0",
        "/documents/none/download",
        "/labs?page=0",
        "/labs?page=abc",
        "/documents/none/download?n=-1",
    ],
)
def test_bad_addresses_get_a_readable_page(
    demo: None, engine: Engine, signed_in: Client, suffix: str
) -> None:
    pid = patient_id(engine, "patient")
    resp = signed_in("patient").get(f"/card/{pid}{suffix}")
    assert resp.status_code in (400, 404), resp.status_code
    assert resp.headers["content-type"].startswith("text/html")
    assert "<h1>" in resp.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=31.02.2024", "Дата указана неверно"),
        ("from=2024-05-01&to=2023-01-01", "раньше даты начала"),
        ("type=bogus", "Такого раздела карты нет"),
        ("org=../../etc", "Такой организации нет"),
        ("q=" + "a" * 300, "Слишком длинный запрос"),
        ("from=%00", "Дата указана неверно"),
    ],
)
def test_malformed_filters_are_explained(
    demo: None, engine: Engine, signed_in: Client, query: str, message: str
) -> None:
    pid = patient_id(engine, "patient")
    resp = signed_in("patient").get(f"/card/{pid}/timeline?{query}")
    assert resp.status_code in (400, 422), resp.status_code
    assert resp.headers["content-type"].startswith("text/html")
    if resp.status_code == 400 and "Отбор не выполнен" in resp.text:
        assert message in resp.text


def test_timeline_filters_by_type_period_and_words(
    demo: None, engine: Engine, signed_in: Client
) -> None:
    pid = patient_id(engine, "patient")
    web = signed_in("patient")
    everything = web.get(f"/card/{pid}/timeline")
    total = int(re.search(r"Найдено записей: (\d+)", everything.text).group(1))  # type: ignore[union-attr]
    labs = web.get(f"/card/{pid}/timeline?type=labs")
    n_labs = int(re.search(r"Найдено записей: (\d+)", labs.text).group(1))  # type: ignore[union-attr]
    assert 0 < n_labs < total
    none = web.get(f"/card/{pid}/timeline?from=1900-01-01&to=1900-12-31")
    assert "Найдено записей: 0" in none.text
    words = web.get(f"/card/{pid}/timeline?q=поликлиника")
    assert int(re.search(r"Найдено записей: (\d+)", words.text).group(1)) > 0  # type: ignore[union-attr]


def test_staff_are_sent_to_the_workspace_and_unlinked_patients_to_access(
    demo: None, engine: Engine, signed_in: Client
) -> None:
    from medcard.auth import accounts

    pid = patient_id(engine, "patient")
    doctor = signed_in("doctor")
    assert doctor.get(f"/card/{pid}").headers["location"] == "/workspace"
    assert doctor.get("/card").headers["location"] == "/workspace"
    accounts.create_account(engine, "new@example.org", "a long password 1", accounts.Role.PATIENT)
    fresh = signed_in("new@example.org")
    assert fresh.get("/card").headers["location"] == "/access"
    assert fresh.get(f"/card/{pid}/labs").headers["location"] == "/access"


def test_document_downloads_with_its_name(demo: None, engine: Engine, signed_in: Client) -> None:
    web = signed_in("patient")
    pid = patient_id(engine, "patient")
    for who in ("patient", "parent"):
        pid = patient_id(engine, who)
        doc = _some(engine, "DocumentReference", pid)
        if doc != "None":
            web = signed_in(who)
            break
    else:
        pytest.skip("no documents in this demo population")
    resp = web.get(f"/card/{pid}/documents/{doc}/download")
    assert resp.status_code == 200
    assert resp.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in resp.headers["content-disposition"]
    assert resp.content.decode("utf-8").strip()


def test_card_pages_are_audited_as_the_patient(
    demo: None, engine: Engine, signed_in: Client
) -> None:
    from sqlalchemy import select

    from medcard.db.tables import audit_log

    pid = patient_id(engine, "patient")
    signed_in("patient").get(f"/card/{pid}/labs")
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.interaction).where(
                audit_log.c.patient_id == pid, audit_log.c.interaction == "everything"
            )
        ).all()
    assert rows
    assert all(r.actor == f"Patient/{pid}" for r in rows)
