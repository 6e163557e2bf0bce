"""Extracts in real headless Chromium: a patient orders one, downloads the PDF (its text
checked), and the public verification page accepts it and rejects an altered copy."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from pypdf import PdfReader
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.extracts import verification
from tests.browser.conftest import PHONE, shoot, sign_in_demo


def _card_of(engine: Engine, who: str) -> str:
    account = accounts.get_by_login(engine, f"{who}@medcard.example")
    assert account is not None
    return account.fhir_ref.split("/", 1)[1]


def test_patient_orders_downloads_and_verifies_an_extract(
    page: Page,
    new_page: Callable[..., Page],
    live_server: str,
    demo: None,
    engine: Engine,
    tmp_path: Path,
) -> None:
    pid = _card_of(engine, "patient")
    sign_in_demo(page, live_server, "patient")
    page.goto(f"{live_server}/card/{pid}/extracts")
    expect(page.get_by_role("heading", name="Выписки из карты")).to_be_visible()
    page.get_by_label("Измерения").uncheck()
    page.get_by_label("С", exact=True).fill("2015-01-01")
    shoot(page, "extracts-form")
    page.get_by_role("button", name="Сформировать выписку").click()
    expect(page.get_by_role("status")).to_contain_text("Выписка заказана")
    # The page refreshes itself (Refresh header) until the background job is done.
    expect(page.locator(".xbadge-ready")).to_be_visible(timeout=30_000)
    expect(page.locator(".extract-what")).to_contain_text("с 01.01.2015")
    shoot(page, "extracts-list")

    with page.expect_download() as info:
        page.get_by_role("link", name="Скачать PDF").click()
    pdf_path = tmp_path / "extract.pdf"
    info.value.save_as(pdf_path)
    pdf = pdf_path.read_bytes()
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    assert "Выписка из электронной медицинской карты" in text
    assert "Период с 01.01.2015" in text
    assert "Измерения" not in text.split("Разделы", 1)[1].split("Приёмы", 2)[0]
    code = verification.code_in_file(pdf)
    assert verification.pretty(code) in text
    assert f"{live_server}/verify" in text

    phone = new_page(viewport=PHONE)
    sign_in_demo(phone, live_server, "patient")
    phone.goto(f"{live_server}/card/{pid}/extracts")
    expect(phone.locator(".xbadge-ready")).to_be_visible()
    shoot(phone, "extracts-list-phone")

    # Anyone, not signed in: the QR code's URL, then the file itself, then an altered copy.
    public = new_page()
    public.goto(f"{live_server}/verify/{code}")
    expect(public.get_by_role("heading", name="Выписка подлинная")).to_be_visible()
    shoot(public, "verify-code-genuine")
    public.goto(f"{live_server}/verify")
    public.get_by_label("Файл выписки (PDF или JSON)").set_input_files(str(pdf_path))
    public.get_by_role("button", name="Проверить файл").click()
    expect(public.get_by_role("heading", name="Выписка подлинная")).to_be_visible()
    expect(public.get_by_text("Файл совпадает с выданной выпиской")).to_be_visible()
    shoot(public, "verify-file-genuine")

    altered = tmp_path / "altered.pdf"
    altered.write_bytes(pdf.replace(b"/Author (medcard)", b"/Author (forger)"))
    public.goto(f"{live_server}/verify")
    public.get_by_label("Файл выписки (PDF или JSON)").set_input_files(str(altered))
    public.get_by_role("button", name="Проверить файл").click()
    expect(public.get_by_role("heading", name="Файл изменён")).to_be_visible()
    shoot(public, "verify-file-altered")

    public.goto(f"{live_server}/verify")
    public.get_by_label("Код проверки").fill(code[:-1] + ("2" if code[-1] != "2" else "3"))
    public.get_by_role("button", name="Проверить", exact=True).click()
    expect(public.get_by_role("heading", name="Код введён с ошибкой")).to_be_visible()
    phone_public = new_page(viewport=PHONE)
    phone_public.goto(f"{live_server}/verify/{verification.pretty(code)}")
    expect(phone_public.get_by_role("heading", name="Выписка подлинная")).to_be_visible()
    shoot(phone_public, "verify-phone")


def test_another_patients_extract_url_shows_not_found(
    page: Page, live_server: str, demo: None, engine: Engine
) -> None:
    other = _card_of(engine, "parent")
    sign_in_demo(page, live_server, "patient")
    response = page.goto(f"{live_server}/card/{other}/extracts")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading")).to_have_count(1)
    shoot(page, "extracts-not-found")
