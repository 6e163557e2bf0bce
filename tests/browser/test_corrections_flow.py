"""End to end in Chromium: a patient reports a vaccination that never happened, the
polyclinic's management accepts, and the vaccination is gone from the portal, the API and
a new extract, and is due again in the calendar."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from medcard import jobs
from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.auth import accounts
from medcard.config import Settings
from medcard.demo.accounts import DEMO_PASSWORD, demo_totp_secret
from medcard.extracts import services
from medcard.extracts.render import Period
from medcard.fhir.store.repository import Repository
from medcard.records import calendar, load_card
from tests.browser.conftest import PHONE, shoot, sign_in, sign_in_demo


@pytest.fixture
def inline_jobs(settings: Settings, engine: Engine) -> Iterator[None]:
    saved = (jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime)
    jobs.configure(settings.model_copy(update={"jobs_mode": "immediate"}), engine)
    yield
    jobs.queue.storage, jobs.queue.immediate, jobs._state.runtime = saved


def _patient(engine: Engine) -> str:
    account = accounts.get_by_login(engine, "patient@medcard.example")
    assert account is not None
    return account.fhir_ref.split("/", 1)[1]


def _clinic_reviewer(engine: Engine, pid: str) -> str:
    """reviewer@ when the demo patient is attached to its polyclinic; else one for theirs."""
    repo = Repository(engine, AccessContext.system())
    clinic = repo.read("Patient", pid).json()["managingOrganization"]["reference"]
    reviewer = accounts.get_by_login(engine, "reviewer@medcard.example")
    assert reviewer is not None
    if reviewer.organization_ref == clinic:
        return "reviewer@medcard.example"
    made = accounts.create_account(
        engine,
        "reviewer-clinic@medcard.example",
        DEMO_PASSWORD,
        Role.REVIEWER,
        display_name="Орлова Наталья Сергеевна",
        organization_ref=clinic,
    )
    accounts.enable_totp(engine, made.id, demo_totp_secret(Role.REVIEWER))
    return made.login


def _extract_bundle(engine: Engine, pid: str) -> dict[str, object]:
    ctx = AccessContext(
        actor=f"Patient/{pid}",
        scopes=Scopes.parse("patient/*.cruds"),
        patient_ids=frozenset({pid}),
        role=Role.PATIENT,
    )
    repo = Repository(engine, ctx)
    req = services.ExtractRequest(("vaccinations",), Period(None, None))
    doc_id = services.request_extract(repo, pid, req, base_url="http://testserver")
    bundle = orjson.loads(services.extract_file(repo, pid, doc_id, "json").data)
    repo.close()
    return bundle  # type: ignore[no-any-return]


def test_reported_vaccination_is_removed_everywhere_and_due_again(
    page: Page,
    new_page: Callable[..., Page],
    live_server: str,
    engine: Engine,
    demo: None,
    inline_jobs: None,
    token: Callable[..., str],
) -> None:
    pid = _patient(engine)
    system = Repository(engine, AccessContext.system())
    doses = calendar(load_card(system, pid))
    dose = next(d for d in doses if d.entry is not None and d.entry.resource.get("performer"))
    assert dose.entry is not None
    imm = dose.entry.id
    before = _extract_bundle(engine, pid)
    assert imm in orjson.dumps(before).decode()

    # the patient reports it, from the entry
    sign_in_demo(page, live_server, "patient")
    page.goto(f"{live_server}/card/{pid}/reports/new?entry=Immunization/{imm}")
    expect(page.get_by_role("heading", name="Это ошибка")).to_be_visible()
    page.get_by_label("Этого не было").check()
    page.get_by_label("Пояснение").fill("Эту прививку мне не делали, в тот день я был в отъезде.")
    expect(page.get_by_label("Кому направить")).to_have_value("clinic")
    shoot(page, "corrections-new")
    page.get_by_role("button", name="Отправить обращение").click()
    expect(page.get_by_role("status")).to_contain_text("Обращение отправлено")
    expect(page.locator("#corr-status")).to_contain_text("подано")
    report_url = page.url.split("?")[0]
    shoot(page, "corrections-patient-report")

    # the polyclinic's management accepts
    reviewer = new_page()
    sign_in(
        reviewer,
        live_server,
        _clinic_reviewer(engine, pid),
        DEMO_PASSWORD,
        demo_totp_secret(Role.REVIEWER),
    )
    reviewer.goto(live_server + "/review")
    expect(reviewer.get_by_role("heading", name="Обращения об ошибках в картах")).to_be_visible()
    shoot(reviewer, "corrections-queue")
    reviewer.locator("table.corr-table a").first.click()
    expect(reviewer.get_by_text("в тот день я был в отъезде")).to_be_visible()
    reviewer.get_by_role("button", name="Взять в работу").click()
    expect(reviewer.locator("#corr-status")).to_contain_text("на рассмотрении")
    shoot(reviewer, "corrections-review")
    reviewer.get_by_label("удовлетворено", exact=True).check()
    reviewer.get_by_label("Обоснование").fill("По журналу прививок прививка не проводилась.")
    reviewer.get_by_role("button", name="Принять решение").click()
    expect(reviewer.locator("#corr-status")).to_contain_text("удовлетворено")
    reviewer.goto(live_server + "/review/figures")
    shoot(reviewer, "corrections-figures")

    # the patient sees the decision; the entry is gone from the portal
    page.goto(report_url)
    expect(page.locator("#corr-status")).to_contain_text("удовлетворено")
    expect(page.locator(".corr-decision")).to_contain_text(
        "По журналу прививок прививка не проводилась."
    )
    expect(page.get_by_text("удалена из карты")).to_be_visible()
    shoot(page, "corrections-patient-decided")
    gone = page.goto(f"{live_server}/card/{pid}/entry/Immunization/{imm}")
    assert gone is not None
    assert gone.status == 404
    page.goto(f"{live_server}/card/{pid}/vaccinations")
    assert f"Immunization/{imm}" not in page.content()

    # ... from the API ...
    auth = {"Authorization": f"Bearer {token()}"}
    assert httpx.get(f"{live_server}/fhir/Immunization/{imm}", headers=auth).status_code == 404
    found = httpx.get(
        f"{live_server}/fhir/Immunization?patient={pid}&_count=500", headers=auth
    ).json()
    assert imm not in {e["resource"]["id"] for e in found.get("entry", [])}
    # ... from a new extract, and the dose is due again
    after = _extract_bundle(engine, pid)
    assert imm not in orjson.dumps(after).decode()
    again = next(
        d
        for d in calendar(load_card(system, pid))
        if (d.vaccine, d.dose, d.revaccination) == (dose.vaccine, dose.dose, dose.revaccination)
    )
    assert again.entry is None
    assert again.status in ("due", "overdue")

    # phone layouts of the patient's list and the reviewer's desk
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/card/{pid}/reports")
    expect(page.get_by_role("heading", name="Сообщения об ошибках в карте")).to_be_visible()
    shoot(page, "corrections-patient-list-phone")
    reviewer.set_viewport_size(PHONE)
    reviewer.goto(live_server + "/review?show=all")
    shoot(reviewer, "corrections-queue-phone")
