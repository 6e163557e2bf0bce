"""Issue 14 item 10: every time a person reads is in the zone of the patient's region,
with the zone named; no page prints a bare time.

Region 78 is moved to Yekaterinburg (UTC+5, МСК+2); region 77 stays in Moscow.  One
moment, 20.11.2026 14:02 UTC, is the filing time of a document request, the time of a
doctor's access in the audit log, and the time of a measurement in the card.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.smart import Scopes
from medcard.audit.recorder import AuditBuffer
from medcard.auth import accounts
from medcard.onboarding import documents
from medcard.regions.config import get_region, make_config, save_region
from medcard.regions.zone import zone_of
from medcard.ru_dates import Times, zone_label
from tests.regions.world import FHIR, World, person

MOMENT = dt.datetime(2026, 11, 20, 14, 2, tzinfo=dt.UTC)
MICROS = int(MOMENT.timestamp() * 1_000_000)
YEKATERINBURG = "Asia/Yekaterinburg"
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")
NAMED = re.compile(r"\s*\((?:МСК|MSK|UTC)[+−]?[\d:]*(?:,[^)]*)?\)")


def _move(engine: Engine, code: str, zone: str) -> None:
    current = get_region(engine, code)
    assert current is not None
    save_region(engine, make_config(code, current.name, zone, current.settings), "system:test")


def _text(html: str) -> str:
    """What a reader sees: no tags (so no attribute values), no styles or scripts."""
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def bare_times(html: str) -> list[str]:
    """Every HH:MM on the page that is not followed by its zone's name."""
    text = _text(html)
    return [
        text[max(0, m.start() - 30) : m.end() + 20]
        for m in TIME.finditer(text)
        if not NAMED.match(text, m.end())
    ]


def _request_at_moment(world: World, account: accounts.Account, pid: str) -> None:
    """A document request filed at MOMENT (as the page files it, with the clock stopped)."""
    due = documents.due_after(MOMENT, 1)
    task = documents._task(account, pid, next(iter(documents.KINDS)), MOMENT, due)
    r = world.system.post("/fhir/Task", json=task, headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.text


def _doctor_opened_at_moment(engine: Engine, pid: str) -> None:
    buffer = AuditBuffer(AccessContext("Practitioner/doc-77", Scopes(())))
    buffer.add("read", "Patient", pid, pid, organization="Organization/poly-77")
    buffer.entries[-1]["recorded"] = MICROS
    buffer.flush_separately(engine)


def _measured_at_moment(world: World, pid: str) -> str:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Пульс"},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": MOMENT.isoformat(),
        "valueQuantity": {"value": 70, "unit": "/min"},
    }
    r = world.system.post("/fhir/Observation", json=obs, headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def ekb(world: World) -> World:
    _move(world.engine, "78", YEKATERINBURG)
    for account, pid in ((world.boris.account, world.p78), (world.anna.account, world.p77)):
        _request_at_moment(world, account, pid)
        _doctor_opened_at_moment(world.engine, pid)
    return world


def test_the_zone_of_a_patient_a_staff_member_and_nobody(ekb: World) -> None:
    zone, basis = zone_of(ekb.engine, patient_id=ekb.p78)
    assert (zone.key, basis) == (YEKATERINBURG, "patient")
    zone, basis = zone_of(ekb.engine, patient_id=ekb.p77)
    assert (zone.key, basis) == ("Europe/Moscow", "patient")
    zone, basis = zone_of(ekb.engine, organization_ref="Organization/poly-78")
    assert (zone.key, basis) == (YEKATERINBURG, "organization")
    zone, basis = zone_of(ekb.engine, patient_id="no-such-patient")
    assert (zone.key, basis) == ("Europe/Moscow", "default")


def test_zone_names_as_russians_say_them() -> None:
    from zoneinfo import ZoneInfo

    assert zone_label(ZoneInfo("Europe/Moscow"), MOMENT) == "МСК"
    assert zone_label(ZoneInfo(YEKATERINBURG), MOMENT) == "МСК+2"
    assert zone_label(ZoneInfo("Europe/Kaliningrad"), MOMENT) == "МСК−1"
    assert zone_label(ZoneInfo(YEKATERINBURG), MOMENT, "en") == "MSK+2"
    assert zone_label(ZoneInfo("Europe/Berlin"), MOMENT) == "UTC+1"
    assert Times(ZoneInfo(YEKATERINBURG)).when(MOMENT) == "20.11.2026 19:02 (МСК+2)"
    assert Times(ZoneInfo(YEKATERINBURG), "en").when(MOMENT) == "2026-11-20 19:02 (MSK+2)"
    # the day is the zone's day: 20:30 UTC is already tomorrow in Yekaterinburg
    late = MOMENT.replace(hour=20, minute=30)
    assert Times(ZoneInfo(YEKATERINBURG)).day(late) == "21.11.2026"


def test_documents_page_and_access_log_show_one_moment_in_the_patients_zone(
    ekb: World,
) -> None:
    docs_page = ekb.boris.http.get("/access/documents")
    assert docs_page.status_code == 200, docs_page.text
    assert "20.11.2026 19:02 (МСК+2)" in _text(docs_page.text)
    assert "Asia/Yekaterinburg (МСК+2, UTC+5)" in docs_page.text
    for url in ("/me/access-log", f"/card/{ekb.p78}/access-log"):
        log = ekb.boris.http.get(url)
        assert log.status_code == 200, log.text
        assert "20.11.2026 19:02 (МСК+2)" in _text(log.text), url
        assert "Asia/Yekaterinburg (МСК+2, UTC+5)" in log.text
        assert "14:02" not in _text(log.text)
        assert bare_times(log.text) == [], url
    assert "14:02" not in _text(docs_page.text)
    assert bare_times(docs_page.text) == []


def test_english_names_the_zone_in_english(ekb: World) -> None:
    text = _text(ekb.boris.http.get("/access/documents?lang=en").text)
    assert "2026-11-20 19:02 (MSK+2)" in text
    log = _text(ekb.boris.http.get("/me/access-log?lang=en").text)
    assert "2026-11-20 19:02 (MSK+2)" in log
    assert "Asia/Yekaterinburg (MSK+2, UTC+5)" in log


def test_a_moscow_patient_sees_moscow_time(ekb: World) -> None:
    docs_page = _text(ekb.anna.http.get("/access/documents").text)
    log = _text(ekb.anna.http.get("/me/access-log").text)
    for text in (docs_page, log):
        assert "20.11.2026 17:02 (МСК)" in text
        assert "19:02" not in text
        assert "14:02" not in text


def test_card_entry_times_are_in_the_patients_zone_for_patient_and_doctor(ekb: World) -> None:
    oid = _measured_at_moment(ekb, ekb.p78)
    mine = ekb.boris.http.get(f"/card/{ekb.p78}/entry/Observation/{oid}")
    assert mine.status_code == 200, mine.text
    assert "20.11.2026 19:02 (МСК+2)" in _text(mine.text)
    assert bare_times(mine.text) == []
    # the Moscow doctor reads the Yekaterinburg patient's entry in the patient's zone
    ws = ekb.doctor.http.get(f"/workspace/patients/{ekb.p78}/entry/Observation/{oid}")
    assert ws.status_code == 200, ws.text
    assert "20.11.2026 19:02 (МСК+2)" in _text(ws.text)
    assert bare_times(ws.text) == []


def test_staff_pages_without_a_patient_use_the_staff_members_region(ekb: World) -> None:
    admin = accounts.create_account(
        ekb.engine,
        "ekb-admin@example.ru",
        "длинный пароль для теста 42",
        "region_admin",
        organization_ref="Organization/poly-78",
        region="78",
    )
    browser = person(ekb.app, ekb.engine, admin).http
    with browser:
        report = browser.get("/admin/audit")
        assert report.status_code == 200, report.text
        text = _text(report.text)
        assert "20.11.2026 19:02 (МСК+2)" in text
        assert "региона вашей организации: Asia/Yekaterinburg" in text
        assert bare_times(report.text) == []
        # a report on one Moscow patient is in that patient's zone
        one = _text(browser.get(f"/admin/audit?patient={ekb.p77}").text)
        assert "20.11.2026 17:02 (МСК)" in one
        assert "19:02" not in one


def test_portal_pages_print_no_bare_time(ekb: World) -> None:
    oid = _measured_at_moment(ekb, ekb.p78)
    http = ekb.boris.http
    pages = [
        "/access",
        "/access/documents",
        "/access/consent",
        f"/card/{ekb.p78}",
        f"/card/{ekb.p78}/timeline",
        f"/card/{ekb.p78}/entry/Observation/{oid}",
        f"/card/{ekb.p78}/access-log",
        f"/card/{ekb.p78}/extracts",
        f"/card/{ekb.p78}/diary",
        "/me/access-log",
        "/me/my-access",
    ]
    for url in pages:
        r = http.get(url)
        assert r.status_code == 200, (url, r.status_code)
        assert bare_times(r.text) == [], url


def test_diary_readings_and_doctors_alerts_in_the_patients_zone(ekb: World) -> None:
    from zoneinfo import ZoneInfo

    local = (dt.datetime.now(ZoneInfo(YEKATERINBURG)) - dt.timedelta(days=1)).replace(
        hour=9, minute=15, second=0, microsecond=0
    )
    typed = local.strftime("%Y-%m-%dT%H:%M")  # the form's wall-clock time, in the region
    r = ekb.boris.http.post(
        f"/card/{ekb.p78}/diary",
        data={"csrf_token": ekb.boris.csrf, "systolic": "190", "diastolic": "120", "when": typed},
    )
    assert r.status_code in (200, 303), r.text
    shown = f"{local:%d.%m.%Y} 09:15 (МСК+2)"
    diary = ekb.boris.http.get(f"/card/{ekb.p78}/diary?period=week")
    assert diary.status_code == 200
    assert shown in _text(diary.text)
    assert "(МСК+2)" in diary.text  # beside the form's time field too
    assert bare_times(diary.text) == []
    alerts = ekb.doctor.http.get("/diary/alerts")
    assert alerts.status_code == 200, alerts.text
    assert shown in _text(alerts.text)
    assert bare_times(alerts.text) == []


def test_doctors_results_inbox_shows_each_result_in_its_patients_zone(ekb: World) -> None:
    for pid in (ekb.p78, ekb.p77):
        order = {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "Общий анализ крови"},
            "subject": {"reference": f"Patient/{pid}"},
            "requester": {"reference": "Practitioner/doc-77"},
        }
        r = ekb.system.post("/fhir/ServiceRequest", json=order, headers={"Content-Type": FHIR})
        assert r.status_code == 201, r.text
        report = {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": {"text": "Общий анализ крови"},
            "subject": {"reference": f"Patient/{pid}"},
            "basedOn": [{"reference": f"ServiceRequest/{r.json()['id']}"}],
            "issued": MOMENT.isoformat(),
        }
        r = ekb.system.post("/fhir/DiagnosticReport", json=report, headers={"Content-Type": FHIR})
        assert r.status_code == 201, r.text
    home = ekb.doctor.http.get("/workspace")
    assert home.status_code == 200, home.text
    inbox = _text(home.text.split('class="ws-inbox"', 1)[1].split("</section>", 1)[0])
    assert "20.11.2026 19:02 (МСК+2)" in inbox  # the Yekaterinburg patient's result
    assert "20.11.2026 17:02 (МСК)" in inbox  # the Moscow patient's
    assert bare_times(home.text) == []


def test_document_deadline_counts_business_days_in_the_patients_zone(
    ekb: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medcard import clock
    from medcard.onboarding import consent

    # Thursday 20:00 UTC is already Friday 01:00 in Yekaterinburg: one business day
    # later is Monday there, not Friday.
    thursday = dt.datetime(2026, 11, 19, 20, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(clock, "now", lambda: thursday)
    account = ekb.boris.account
    consent.give(ekb.engine, account)
    created, _ = documents.request_documents(
        ekb.engine, account, [list(documents.KINDS)[-1]], business_days=1
    )
    assert created
    mine = [r for r in documents.requests_of(ekb.engine, account) if r.authored == thursday]
    assert [r.due for r in mine] == [dt.datetime(2026, 11, 22, 20, 0, tzinfo=dt.UTC)]
    text = _text(ekb.boris.http.get("/access/documents").text)
    assert "23.11.2026 01:00 (МСК+2)" in text
