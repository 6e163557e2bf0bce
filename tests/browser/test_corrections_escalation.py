"""In Chromium: a report with a file, a question to the author clinician who answers in
the workspace, a rejection, and the patient's escalation to the regional ministry."""

from __future__ import annotations

from collections.abc import Callable

import pyotp
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.auth import accounts
from medcard.demo.accounts import DEMO_PASSWORD, demo_totp_secret
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from tests.browser.conftest import PHONE, shoot, sign_in, sign_in_demo
from tests.browser.test_corrections_flow import _clinic_reviewer, _patient

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
AUTHOR_SECRET = pyotp.random_base32()


def _entry_with_author(engine: Engine, pid: str) -> tuple[str, str]:
    """An immunization given by a practitioner, and that practitioner."""
    repo = Repository(engine, AccessContext.system())
    found = repo.search(parse("Immunization", [("patient", f"Patient/{pid}"), ("_count", "100")]))
    for m in found.matches:
        performer = m.json().get("performer") or []
        if performer:
            return f"Immunization/{m.id}", performer[0]["actor"]["reference"]
    raise AssertionError("no immunization with a performer")


def test_question_rejection_and_escalation(
    page: Page,
    new_page: Callable[..., Page],
    live_server: str,
    engine: Engine,
    demo: None,
    tmp_path: object,
) -> None:
    pid = _patient(engine)
    ref, author = _entry_with_author(engine, pid)
    made = accounts.create_account(
        engine,
        "author@medcard.example",
        DEMO_PASSWORD,
        Role.PRACTITIONER,
        display_name="Автор записи",
        fhir_ref=author,
    )
    accounts.enable_totp(engine, made.id, AUTHOR_SECRET)

    # the patient files with a photo, on a phone
    page.set_viewport_size(PHONE)
    sign_in_demo(page, live_server, "patient")
    page.goto(f"{live_server}/card/{pid}/reports/new?entry={ref}")
    page.get_by_label("Неверные сведения").check()
    page.get_by_label("Как правильно").fill("Прививка сделана 05.02.2023, серия К294-92")
    page.get_by_label("Файлы").set_input_files(
        files=[{"name": "справка.png", "mimeType": "image/png", "buffer": PNG}]
    )
    shoot(page, "corrections-new-phone")
    page.get_by_role("button", name="Отправить обращение").click()
    expect(page.get_by_role("status")).to_contain_text("Обращение отправлено")
    report_url = page.url.split("?")[0]

    # the polyclinic asks the author organisation
    reviewer = new_page()
    sign_in(
        reviewer,
        live_server,
        _clinic_reviewer(engine, pid),
        DEMO_PASSWORD,
        demo_totp_secret(Role.REVIEWER),
    )
    reviewer.goto(live_server + "/review")
    reviewer.locator("table.corr-table a").first.click()
    review_url = reviewer.url
    expect(reviewer.get_by_role("link", name="справка.png")).to_be_visible()
    reviewer.get_by_label("у организации, сделавшей запись").check()
    reviewer.get_by_label("Вопрос").fill("Подтвердите дату и серию по журналу прививок.")
    reviewer.get_by_role("button", name="Отправить запрос").click()
    expect(reviewer.locator("#corr-status")).to_contain_text("запрошены сведения")

    # the author clinician answers in the workspace
    doctor = new_page()
    sign_in(doctor, live_server, "author@medcard.example", DEMO_PASSWORD, AUTHOR_SECRET)
    doctor.goto(live_server + "/workspace/corrections")
    expect(doctor.get_by_text("Подтвердите дату и серию по журналу прививок.")).to_be_visible()
    shoot(doctor, "corrections-author")
    doctor.get_by_label("Ваш ответ").fill("По журналу: 01.02.2023, серия К294-91, запись верна.")
    doctor.get_by_role("button", name="Отправить ответ").click()
    expect(doctor.get_by_role("status")).to_contain_text("Ответ отправлен")
    doctor.set_viewport_size(PHONE)
    shoot(doctor, "corrections-author-phone")

    # the polyclinic rejects, with reasons
    reviewer.goto(review_url)
    expect(reviewer.get_by_text("запись верна")).to_be_visible()
    reviewer.get_by_label("отказано").check()
    reviewer.get_by_label("Обоснование").fill("Журнал прививок подтверждает запись.")
    reviewer.set_viewport_size(PHONE)
    shoot(reviewer, "corrections-review-phone")
    reviewer.get_by_role("button", name="Принять решение").click()
    expect(reviewer.locator("#corr-status")).to_contain_text("отказано")

    # the patient sees the refusal and escalates to the regional ministry
    page.goto(report_url)
    expect(page.locator("#corr-status")).to_contain_text("отказано")
    expect(page.locator(".corr-decision")).to_contain_text("Журнал прививок подтверждает запись.")
    shoot(page, "corrections-patient-rejected-phone")
    page.get_by_label("Кому направить").select_option("ministry")
    page.get_by_role("button", name="Направить").click()
    expect(page.get_by_role("status")).to_contain_text("Обращение отправлено")
    expect(page.get_by_text("Предыдущее обращение")).to_be_visible()
    expect(page.get_by_text("Журнал прививок подтверждает запись.")).to_be_visible()

    # the ministry has it, with the history; the entry is still in the card
    ministry = new_page()
    sign_in(
        ministry,
        live_server,
        "reviewer-ministry@medcard.example",
        DEMO_PASSWORD,
        demo_totp_secret(Role.REVIEWER),
    )
    ministry.goto(live_server + "/review")
    ministry.locator("table.corr-table a").first.click()
    expect(ministry.get_by_text("запись верна")).to_be_visible()
    expect(ministry.locator("#corr-status")).to_contain_text("подано")
    resp = page.goto(f"{live_server}/card/{pid}/entry/{ref}")
    assert resp is not None
    assert resp.status == 200
