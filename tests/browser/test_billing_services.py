"""In Chromium: the patient's "Services received" page (totals against the data), a line
disputed with the insurer, accepted by the insurer's staff, gone from the list and counted
as voided in the insurer's figures."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard.access.roles import Role
from medcard.auth import accounts
from medcard.billing.model import BILLABLE
from medcard.demo.accounts import DEMO_PASSWORD, demo_totp_secret
from tests.billing.support import hidden_line, lines_of
from tests.browser.conftest import PHONE, shoot, sign_in, sign_in_demo


def _patient(engine: Engine) -> str:
    account = accounts.get_by_login(engine, "patient@medcard.example")
    assert account is not None
    return account.fhir_ref.split("/", 1)[1]


def _amounts(page: Page, selector: str) -> Decimal:
    values = page.locator(selector).evaluate_all("els => els.map(e => e.dataset.amount)")
    return sum((Decimal(v) for v in values), Decimal(0))


def test_services_page_totals_and_the_dispute_cycle_with_the_insurer(
    page: Page, new_page: Callable[..., Page], live_server: str, engine: Engine, demo: None
) -> None:
    pid = _patient(engine)
    mine = lines_of(engine, pid)
    total = sum((x.amount for x in mine if x.status == BILLABLE), Decimal(0))
    sign_in_demo(page, live_server, "patient")
    page.goto(f"{live_server}/card/{pid}")
    page.get_by_role("link", name="Услуги по ОМС").click()
    expect(page.get_by_role("heading", name="Услуги по полису ОМС")).to_be_visible()
    expect(page.locator("tr.bill-line")).to_have_count(len(mine))
    assert _amounts(page, "tr.bill-line") == total
    assert _amounts(page, "#bill-by-year td") == total
    assert _amounts(page, "#bill-by-org td") == total
    shown = page.locator("#bill-total").inner_text().replace("\u00a0", "").replace("₽", "")
    assert Decimal(shown.replace(",", ".")) == total
    shoot(page, "billing-services")
    phone = new_page(viewport=PHONE)
    sign_in_demo(phone, live_server, "patient")
    phone.goto(f"{live_server}/card/{pid}/services")
    expect(phone.locator("#bill-total")).to_be_visible()
    shoot(phone, "billing-services-phone")

    # "I did not receive this service"
    line = next(x for x in mine if x.status == BILLABLE and x.source.startswith("Encounter/"))
    page.locator(f'tr[data-line="{line.id}"] a.bill-dispute').click()
    expect(page.get_by_role("heading", name="Я не получал(а) эту услугу")).to_be_visible()
    expect(page.locator('input[name="authority"][value="insurer"]')).to_be_checked()
    page.get_by_label("Пояснение (необязательно)").fill("В этот день я был в командировке.")
    shoot(page, "billing-dispute")
    page.get_by_role("button", name="Оспорить услугу").click()
    expect(page.get_by_role("status")).to_contain_text("Обращение отправлено")

    # the insurer's staff accept
    insurer = new_page()
    sign_in(
        insurer,
        live_server,
        "reviewer-insurer@medcard.example",
        DEMO_PASSWORD,
        demo_totp_secret(Role.REVIEWER),
    )
    insurer.goto(live_server + "/insurer/services")
    expect(insurer.locator(f'tr[data-line="{line.id}"]')).to_be_visible()
    shoot(insurer, "billing-insurer-services")
    insurer.goto(live_server + "/review")
    insurer.locator("table.corr-table a").first.click()
    expect(insurer.get_by_text("В этот день я был в командировке")).to_be_visible()
    insurer.get_by_role("button", name="Взять в работу").click()
    insurer.get_by_label("удовлетворено", exact=True).check()
    insurer.get_by_label("Обоснование").fill("Реестр счетов: приём не подтверждён.")
    insurer.get_by_role("button", name="Принять решение").click()
    expect(insurer.locator("#corr-status")).to_contain_text("удовлетворено")
    assert hidden_line(engine, line.id).status == "entered-in-error"
    insurer.goto(live_server + "/insurer/figures")
    cell = insurer.locator(
        f'table[data-month="{line.month}"] tr[data-org="{line.org_ref}"] td[data-voided]'
    )
    assert Decimal(cell.get_attribute("data-voided") or "0") >= line.amount
    shoot(insurer, "billing-insurer-figures")

    # gone from the patient's list; the total drops by its cost
    page.goto(f"{live_server}/card/{pid}/services")
    expect(page.locator(f'tr[data-line="{line.id}"]')).to_have_count(0)
    assert _amounts(page, "tr.bill-line") == total - line.amount
