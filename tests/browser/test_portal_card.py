"""The patient's medical card in real headless Chromium: every section shows the demo
patient's data, a parent switches to their child's card, another patient's pages and
files are not reachable by URL, and each page is photographed on a desktop and a phone."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.records.sections import SECTIONS
from tests.browser.conftest import PHONE, shoot, sign_in_demo


def _pid(engine: Engine, who: str) -> str:
    account = accounts.get_by_login(engine, f"{who}@medcard.example")
    assert account is not None
    return account.fhir_ref.split("/", 1)[1]


def test_patient_reads_every_part_of_the_card(
    page: Page, new_page: Callable[..., Page], live_server: str, demo: None, engine: Engine
) -> None:
    sign_in_demo(page, live_server, "patient")
    page.goto(live_server + "/card")
    pid = _pid(engine, "patient")
    assert page.url.endswith(f"/card/{pid}")
    expect(page.get_by_role("heading", name="Медицинская карта", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Прикрепление")).to_be_visible()
    expect(page.get_by_text("Лечащий врач")).to_be_visible()
    shoot(page, "portal-overview")
    nav = page.get_by_role("navigation", name="Разделы карты")
    for section in SECTIONS:
        link = nav.get_by_role("link", name=re.compile(re.escape(section.ru)))
        if link.count() == 0:
            continue
        link.click()
        expect(page.get_by_role("heading", name=section.ru, level=1)).to_be_visible()
        shoot(page, f"portal-section-{section.key}")
    # phone: the same overview, readable in a narrow column
    phone = new_page(viewport=PHONE)
    sign_in_demo(phone, live_server, "patient")
    phone.goto(f"{live_server}/card/{pid}")
    expect(phone.get_by_role("heading", name="Прикрепление")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, width
    shoot(phone, "portal-overview-phone")


def test_entry_detail_trend_timeline_and_access_log(
    page: Page, new_page: Callable[..., Page], live_server: str, demo: None, engine: Engine
) -> None:
    pid = _pid(engine, "patient")
    sign_in_demo(page, live_server, "patient")
    # a lab result opens to its detail with the analyte's trend chart
    page.goto(f"{live_server}/card/{pid}/labs")
    page.locator("ul.analytes a").first.click()
    expect(page.locator("svg.trend")).to_be_visible()
    expect(page.get_by_role("heading", name="Все результаты")).to_be_visible()
    shoot(page, "portal-trend")
    page.locator("table.results tbody a").first.click()
    expect(page.get_by_text("Норма", exact=True)).to_be_visible()
    expect(page.locator("svg.trend")).to_be_visible()
    shoot(page, "portal-entry-lab-result")
    # a visit opens with its source and what was recorded during it
    page.goto(f"{live_server}/card/{pid}/visits")
    page.locator("h3.entry-title a").first.click()
    expect(page.get_by_text("Организация", exact=True)).to_be_visible()
    shoot(page, "portal-entry-visit")
    # search across the card from the header, then narrow by section with the keyboard
    page.goto(f"{live_server}/card/{pid}")
    page.get_by_label("Поиск по карте").fill("поликлиника")
    page.get_by_label("Поиск по карте").press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Найдено записей")
    page.get_by_label("Раздел", exact=True).select_option("visits")
    page.get_by_label("С даты").fill("01.01.2000")
    page.get_by_role("button", name="Показать").click()
    expect(page.locator("ol.entries li").first).to_contain_text("Приёмы")
    shoot(page, "portal-timeline")
    page.get_by_label("С даты").fill("31.02.2020")
    page.get_by_role("button", name="Показать").click()
    expect(page.get_by_role("alert")).to_contain_text("Дата указана неверно")
    shoot(page, "portal-timeline-error")
    # who opened my card
    page.get_by_role("link", name="Кто открывал карту").first.click()
    expect(page.get_by_role("heading", name="Кто открывал мою карту")).to_be_visible()
    shoot(page, "portal-access-log")
    phone = new_page(viewport=PHONE)
    sign_in_demo(phone, live_server, "patient")
    for path, name in (("/labs", "labs"), ("/timeline?q=анализ", "timeline"),
                       ("/vaccinations", "vaccinations"), ("/access-log", "access-log")):  # fmt: skip
        phone.goto(f"{live_server}/card/{pid}{path}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1, path
        shoot(phone, f"portal-{name}-phone")


def test_parent_switches_to_childs_card_and_documents_download(
    page: Page, live_server: str, demo: None, engine: Engine
) -> None:
    sign_in_demo(page, live_server, "parent")
    page.goto(live_server + "/card")
    switcher = page.get_by_role("navigation", name="Чья карта")
    expect(switcher).to_be_visible()
    child_link = switcher.get_by_role("link").nth(1)
    child_name = child_link.inner_text()
    child_link.click()
    expect(page.locator(".card-patient")).to_contain_text(child_name)
    page.get_by_role("navigation", name="Разделы карты").get_by_role(
        "link", name=re.compile("Прививки")
    ).click()
    expect(page.get_by_role("heading", name="Национальный календарь прививок")).to_be_visible()
    expect(page.locator(".vstatus-done").first).to_be_visible()
    shoot(page, "portal-child-vaccinations")
    # certificates open and download, from whichever card has one
    for who in ("parent", "child"):
        page.get_by_role("navigation", name="Чья карта").get_by_role("link").nth(
            0 if who == "parent" else 1
        ).click()
        page.get_by_role("navigation", name="Разделы карты").get_by_role(
            "link", name=re.compile("Справки")
        ).click()
        docs = page.locator("h3.entry-title a")
        if docs.count():
            docs.first.click()
            expect(page.locator("pre.document-text")).to_be_visible()
            shoot(page, "portal-entry-document")
            with page.expect_download() as info:
                page.get_by_role("link", name="Скачать").click()
            assert info.value.suggested_filename.endswith(".txt")
            break


def test_patient_cannot_reach_another_patients_pages_or_files(
    page: Page, live_server: str, demo: None, engine: Engine
) -> None:
    from sqlalchemy import select

    from medcard.db.tables import resources

    mine, parent = _pid(engine, "patient"), _pid(engine, "parent")
    with engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.resource_type, resources.c.id, resources.c.patient_id).where(
                resources.c.patient_id.notin_(["", mine]),
                resources.c.resource_type.in_(["Encounter", "DocumentReference"]),
            )
        ).all()
    enc = next(r for r in rows if r.resource_type == "Encounter")
    doc = next((r for r in rows if r.resource_type == "DocumentReference"), None)
    sign_in_demo(page, live_server, "patient")
    urls = [
        f"/card/{parent}",
        f"/card/{enc.patient_id}/visits",
        f"/card/{enc.patient_id}/entry/Encounter/{enc.id}",
        f"/card/{mine}/entry/Encounter/{enc.id}",
        f"/card/{mine}/no-such-section",
    ]
    if doc is not None:
        urls.append(f"/card/{doc.patient_id}/documents/{doc.id}/download")
    for url in urls:
        response = page.goto(live_server + url)
        assert response is not None
        assert response.status == 404, url
        expect(page.get_by_role("heading", name="Страница не найдена")).to_be_visible()
    shoot(page, "portal-not-found")
