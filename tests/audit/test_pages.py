"""The audit pages: "who opened my card" for patients, staff's own history, admin reports."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import Engine

from medcard.auth.accounts import Account
from tests.audit.conftest import Entry, Record, audit_rows, create

Browser = Callable[[Account], TestClient]
MakeAccount = Callable[..., Account]


def _entries(html: str) -> list[str]:
    """The entry cards (patient and staff pages) or table rows (reports) of a page."""
    cards = re.findall(r'<li class="entry.*?</li>', html, flags=re.S)
    return cards or re.findall(r"<tr class=.*?</tr>", html, flags=re.S)


def _patients(html: str) -> list[str]:
    """The patients of a report's rows (rows without one, e.g. report runs, left out)."""
    return [m for r in _entries(html) for m in re.findall(r"<code>(pat\d)</code>", r)]


def _micros(year: int, month: int, day: int, hour: int = 12) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp() * 1_000_000)


@pytest.fixture
def clinic(client: TestClient) -> dict[str, Any]:
    """Two organisations, a doctor at the first, and two patients attached to it."""
    create(
        client,
        {"resourceType": "Organization", "id": "clinic1", "name": "Городская поликлиника № 1"},
    )
    create(client, {"resourceType": "Organization", "id": "clinic2", "name": "Областная больница"})
    create(
        client,
        {
            "resourceType": "Practitioner",
            "id": "doc1",
            "name": [{"use": "official", "family": "Сидоров", "given": ["Пётр", "Ильич"]}],
            "qualification": [{"code": {"text": "врач-терапевт участковый"}}],
        },
    )
    for pid, family in (("pat1", "Иванова"), ("pat2", "Петров")):
        create(
            client,
            {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"family": family, "given": ["Анна"]}],
                "managingOrganization": {"reference": "Organization/clinic1"},
            },
        )
    return {}


@pytest.fixture
def anna(make_account: MakeAccount) -> Account:
    return make_account("patient", display_name="Анна Иванова", fhir_ref="Patient/pat1")


# -- who opened my card --------------------------------------------------------------------


def test_patient_sees_a_practitioners_read_through_fhir(
    clinic: dict[str, Any],
    client: TestClient,
    token: Callable[..., str],
    record: Record,
    anna: Account,
    browser: Browser,
) -> None:
    doctor = token(
        "user/*.rs",
        subject="Practitioner/doc1",
        extra={"role": "practitioner", "orgs": ["clinic1"]},
    )
    r = client.get("/fhir/Patient/pat1", headers={"Authorization": f"Bearer {doctor}"})
    if r.status_code != 200:  # the access gate refused: record the access as the store would
        record(Entry("Practitioner/doc1", "pat1", organization="Organization/clinic1"))
    html = browser(anna).get("/me/access-log").text
    doctor_entries = [e for e in _entries(html) if "Сидоров Пётр Ильич" in e]
    assert len(doctor_entries) == 1
    entry = doctor_entries[0]
    assert "врач-терапевт участковый" in entry
    assert "Врач" in entry
    assert "просмотр" in entry
    assert "личные данные" in entry
    assert "Кто открывал мою карту" in html
    # the system client that created the record is listed too, as such
    assert any("Система" in e and "system:test" in e for e in _entries(html))


def test_emergency_access_is_flagged_and_can_be_listed_alone(
    clinic: dict[str, Any], record: Record, anna: Account, browser: Browser
) -> None:
    record(Entry("Practitioner/doc1", "pat1", purpose="TREAT", organization="Organization/clinic1"))
    record(
        Entry(
            "Practitioner/doc1",
            "pat1",
            "search",
            "Observation",
            purpose="ETREAT",
            emergency=True,
            organization="clinic2",
        )
    )
    page = browser(anna)
    html = page.get("/me/access-log").text
    assert "Экстренных обращений к карте: 1" in html
    emergency = [e for e in _entries(html) if "entry-emergency" in e]
    assert len(emergency) == 1
    assert "Экстренный доступ" in emergency[0]
    assert "Областная больница" in emergency[0]
    assert "экстренная помощь" in emergency[0]
    assert "наблюдения и анализы" in emergency[0]
    only = page.get("/me/access-log?emergency=1").text
    assert len(_entries(only)) == 1
    assert "entry-emergency" in _entries(only)[0]


def test_the_patients_own_accesses_are_marked_you(
    clinic: dict[str, Any],
    client: TestClient,
    token: Callable[..., str],
    anna: Account,
    browser: Browser,
    record: Record,
) -> None:
    own = token("patient/*.rs", patient="pat1", extra={"role": "patient"})
    assert (
        client.get("/fhir/Patient/pat1", headers={"Authorization": f"Bearer {own}"}).status_code
        == 200
    )
    record(Entry(anna.actor, "pat1", "audit-report", "AuditEvent"))
    entries = _entries(browser(anna).get("/me/access-log").text)
    mine = [e for e in entries if 'class="you"' in e]
    assert len(mine) == 2
    assert all("entry-you" in e for e in mine)


def test_a_patient_cannot_see_another_patients_log(
    clinic: dict[str, Any], record: Record, anna: Account, browser: Browser
) -> None:
    record(Entry("Practitioner/doc1", "pat2", organization="Organization/clinic1"))
    record(Entry("Practitioner/doc1", "pat1", organization="Organization/clinic1"))
    page = browser(anna)
    for url in (
        "/me/access-log",
        "/me/access-log?patient=pat2",
        "/me/access-log?patient_id=pat2&fhir_ref=Patient/pat2",
    ):
        html = page.get(url).text
        assert "pat2" not in html
        assert len([e for e in _entries(html) if "Сидоров" in e]) == 1


def test_the_access_log_needs_a_signed_in_patient(
    app: Any, make_account: MakeAccount, browser: Browser
) -> None:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as anonymous:
        r = anonymous.get("/me/access-log")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
    doctor = make_account("practitioner", fhir_ref="Practitioner/doc1")
    assert browser(doctor).get("/me/access-log").status_code == 403
    unlinked = make_account("patient")
    r = browser(unlinked).get("/me/access-log")
    assert r.status_code == 200
    assert "ещё не связана" in r.text


def test_the_access_log_in_english_and_moscow_time(
    record: Record, anna: Account, browser: Browser
) -> None:
    record(Entry("Practitioner/doc9", "pat1", emergency=True, recorded=_micros(2025, 3, 10, 12)))
    page = browser(anna)
    ru = page.get("/me/access-log?lang=ru").text
    assert "10.03.2025 15:00 (МСК)" in ru
    assert "по часовому поясу: Europe/Moscow (МСК, UTC+3)" in ru
    en = page.get("/me/access-log?lang=en").text
    assert "Who opened my record" in en
    assert "Emergency access" in en
    assert "2025-03-10 15:00 (MSK)" in en
    assert "Europe/Moscow (MSK, UTC+3)" in en
    assert '<meta name="viewport"' in en


def test_the_access_log_is_paged_newest_first(
    record: Record, anna: Account, browser: Browser
) -> None:
    for i in range(60):
        record(Entry("Practitioner/doc9", "pat1", recorded=_micros(2025, 1, 1) + i * 60_000_000))
    page = browser(anna)
    first = page.get("/me/access-log").text
    assert len(_entries(first)) == 50
    assert "Страница 1 из 2" in first
    assert "01.01.2025 15:59" in _entries(first)[0]
    assert 'href="/me/access-log?page=2"' in first
    second = page.get("/me/access-log?page=2").text
    assert len(_entries(second)) == 10
    assert "01.01.2025 15:00" in _entries(second)[-1]
    assert page.get("/me/access-log?page=0").status_code == 400


# -- staff: my own access history --------------------------------------------------------


def test_staff_see_their_own_access_history(
    record: Record, make_account: MakeAccount, browser: Browser
) -> None:
    doctor = make_account("practitioner", fhir_ref="Practitioner/doc1")
    record(Entry("Practitioner/doc1", "pat1", emergency=True))
    record(Entry(doctor.actor, "pat2", "search", "Observation"))
    record(Entry("Practitioner/doc2", "pat3"))
    html = browser(doctor).get("/me/my-access").text
    entries = _entries(html)
    assert len(entries) == 2
    assert "Patient/pat2" in entries[0]
    assert "Patient/pat1" in entries[1]
    assert "Экстренный доступ" in entries[1]
    assert "pat3" not in html


# -- administrators' reports ---------------------------------------------------------------


@pytest.fixture
def log(record: Record, make_account: MakeAccount) -> dict[str, Account]:
    """A small log across two organisations and two months."""
    doctor = make_account("practitioner", login="doctor@example.ru", fhir_ref="Practitioner/doc1")
    march, april = _micros(2025, 3, 10), _micros(2025, 4, 10)
    record(Entry("Practitioner/doc1", "pat1", organization="Organization/clinic1", recorded=march))
    record(Entry("Practitioner/doc1", "pat2", organization="clinic1", recorded=april))
    record(
        Entry(
            "Practitioner/doc2",
            "pat1",
            organization="Organization/clinic2",
            emergency=True,
            recorded=april,
        )
    )
    record(Entry(doctor.actor, "pat3", organization="Organization/clinic1", recorded=april))
    return {"doctor": doctor}


def test_reports_are_for_administrators_only(
    log: dict[str, Account], make_account: MakeAccount, anna: Account, browser: Browser
) -> None:
    for account in (anna, log["doctor"], make_account("registrar"), make_account("reviewer")):
        page = browser(account)
        assert page.get("/admin/audit").status_code == 403
        assert page.get("/admin/audit/export?format=ndjson").status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"pat1", "pat2", "pat3"}),
        ("patient=pat1", {"pat1"}),
        ("user=doctor@example.ru", {"pat1", "pat2", "pat3"}),
        ("user=Practitioner/doc2", {"pat1"}),
        ("organization=clinic2", {"pat1"}),
        ("organization=Organization/clinic1", {"pat1", "pat2", "pat3"}),
        ("since=2025-04-01", {"pat1", "pat2", "pat3"}),
        ("until=2025-03-31", {"pat1"}),
        ("since=2025-04-01&emergency=1", {"pat1"}),
        ("since=01.04.2025", {"pat1", "pat2", "pat3"}),  # as Russian clinicians write it
        ("until=31.03.2025", {"pat1"}),
    ],
)
def test_region_admin_report_filters(
    log: dict[str, Account],
    make_account: MakeAccount,
    browser: Browser,
    query: str,
    expected: set[str],
) -> None:
    admin = make_account("region_admin", organization_ref="Organization/health-ministry")
    html = browser(admin).get(f"/admin/audit?{query}").text
    assert set(_patients(html)) == expected


def test_report_counts_and_bad_dates(
    log: dict[str, Account], make_account: MakeAccount, browser: Browser
) -> None:
    admin = make_account("region_admin")
    page = browser(admin)
    html = page.get("/admin/audit?organization=clinic1&since=2025-04-01").text
    assert "Всего записей: 2" in html
    assert "выполнено" in _entries(html)[0]
    assert page.get("/admin/audit?since=10.03.2025").status_code == 200
    bad = page.get("/admin/audit?since=03/10/2025")
    assert bad.status_code == 400
    assert "ДД.ММ.ГГГГ" in bad.text


def test_org_admin_sees_only_their_organisation(
    log: dict[str, Account], make_account: MakeAccount, browser: Browser
) -> None:
    admin = make_account("org_admin", organization_ref="Organization/clinic1")
    page = browser(admin)
    html = page.get("/admin/audit").text
    assert "Показаны только обращения от имени вашей организации" in html
    assert _patients(html) == ["pat3", "pat2", "pat1"]
    assert "entry-emergency" not in html  # that was clinic2's
    # choosing another organisation does not widen the limit
    assert _patients(page.get("/admin/audit?organization=clinic2").text) == []
    assert _patients(page.get("/admin/audit?patient=pat1").text) == ["pat1"]
    assert page.get("/admin/audit/export?format=ndjson&organization=clinic2").text == ""
    exported = page.get("/admin/audit/export?format=ndjson").text.splitlines()
    assert {orjson.loads(line)["agent"][1]["who"]["reference"] for line in exported} == {
        "Organization/clinic1"
    }
    nobody = make_account("org_admin")  # not attached to an organisation: nothing
    assert _entries(browser(nobody).get("/admin/audit").text) == []


def test_report_downloads(
    log: dict[str, Account], make_account: MakeAccount, browser: Browser
) -> None:
    admin = make_account("region_admin")
    page = browser(admin)
    r = page.get("/admin/audit/export?format=ndjson&patient=pat1")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+ndjson")
    assert "attachment" in r.headers["content-disposition"]
    events = [orjson.loads(line) for line in r.text.splitlines()]
    assert [e["subtype"][0]["code"] for e in events] == ["read", "read", "audit-export"]
    for event in events:
        AuditEvent.model_validate(event)
    r = page.get("/admin/audit/export?format=csv&since=2025-04-01&emergency=1")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["patient_id"], x["emergency"], x["organization"]) for x in rows] == [
        ("pat1", "1", "Organization/clinic2")
    ]
    assert page.get("/admin/audit/export?format=xml").status_code == 400


def test_running_a_report_is_recorded_and_shown_to_the_patient(
    log: dict[str, Account],
    make_account: MakeAccount,
    browser: Browser,
    anna: Account,
    engine: Engine,
) -> None:
    admin = make_account(
        "org_admin", display_name="Ольга Смирнова", organization_ref="Organization/clinic1"
    )
    assert browser(admin).get("/admin/audit?patient=pat1").status_code == 200
    [entry] = audit_rows(engine, interaction="audit-report")
    assert (entry.actor, entry.patient_id, entry.organization) == (
        admin.actor,
        "pat1",
        "Organization/clinic1",
    )
    html = browser(anna).get("/me/access-log").text
    [seen] = [e for e in _entries(html) if "Ольга Смирнова" in e]
    assert "Администратор организации" in seen
    assert "просмотр журнала доступа" in seen


def test_names_are_looked_up_once_per_page_through_the_fhir_core(
    clinic: dict[str, Any],
    client: TestClient,
    record: Record,
    anna: Account,
    browser: Browser,
    engine: Engine,
) -> None:
    create(client, {"resourceType": "Practitioner", "id": "doc2", "name": [{"family": "Петрова"}]})
    for doc, org in (("doc1", "clinic1"), ("doc2", "clinic2"), ("doc1", "clinic2"), ("gone", "")):
        record(Entry(f"Practitioner/{doc}", "pat1", organization=org))
    html = browser(anna).get("/me/access-log").text
    assert "Сидоров Пётр Ильич" in html
    assert "Петрова" in html
    assert "Областная больница" in html
    assert "Practitioner/gone" in html  # unknown to the record: shown as recorded
    lookups = audit_rows(engine, actor="system:audit")
    assert sorted(r.resource_type for r in lookups) == ["Organization", "Practitioner"]
