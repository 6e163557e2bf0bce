"""The pages: the patient's list with totals and downloads, disputes, insurer, tariffs."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.billing import generate, prices
from medcard.billing.model import BILLABLE
from tests.billing.support import lines_of
from tests.corrections.conftest import context_of, patient_id

Client = Callable[[str], TestClient]


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def test_patient_page_totals_and_downloads_match_the_lines(
    engine: Engine, demo: None, signed_in: Client
) -> None:
    pid = patient_id(engine)
    web = signed_in("patient")
    mine = lines_of(engine, pid)
    total = sum((x.amount for x in mine if x.status == BILLABLE), Decimal(0))
    html = web.get(f"/card/{pid}/services").text
    assert "Услуги по полису ОМС" in html
    assert html.count('class="bill-line') == len(mine)
    assert f"{total:,.2f}".replace(",", "\u00a0").replace(".", ",") in html
    assert f"/card/{pid}/entry/" in html
    assert "/dispute" in html
    # period filter
    year = max(x.year for x in mine)
    html = web.get(f"/card/{pid}/services?start={year}-01-01&end={year}-12-31").text
    assert html.count('class="bill-line') == sum(1 for x in mine if x.year == year)
    assert web.get(f"/card/{pid}/services?start=2025-13-01").status_code == 422
    rows = list(
        csv.reader(
            io.StringIO(web.get(f"/card/{pid}/services.csv").text.lstrip("\ufeff")), delimiter=";"
        )
    )
    assert len(rows) == len(mine) + 2
    assert rows[-1][6] == f"{total:.2f}"
    pdf = web.get(f"/card/{pid}/services.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


def test_another_patients_services_are_not_found(
    engine: Engine, demo: None, signed_in: Client
) -> None:
    mine = context_of(engine, "patient").patient_ids
    other = next(x.patient_id for x in lines_of(engine) if x.patient_id not in mine)
    web = signed_in("patient")
    for path in ("services", "services.csv", "services.pdf", "services/x/dispute"):
        assert web.get(f"/card/{other}/{path}").status_code == 404, path


def test_dispute_form_files_a_report_to_the_insurer(
    engine: Engine, demo: None, signed_in: Client
) -> None:
    pid = patient_id(engine)
    line = next(x for x in lines_of(engine, pid) if x.status == BILLABLE)
    web = signed_in("patient")
    form = web.get(f"/card/{pid}/services/{line.id}/dispute")
    assert form.status_code == 200
    assert line.title in form.text
    resp = web.post(
        f"/card/{pid}/services/{line.id}/dispute",
        data={"csrf_token": _csrf(form.text), "authority": "insurer", "comment": "не был"},
    )
    assert resp.status_code == 303
    assert f"/card/{pid}/reports/" in resp.headers["location"]
    again = web.post(
        f"/card/{pid}/services/{line.id}/dispute",
        data={"csrf_token": _csrf(form.text), "authority": "insurer"},
    )
    assert again.status_code == 409
    assert "уже оспорена" in again.text
    listing_html = web.get(f"/card/{pid}/services").text
    assert "Оспорена, на рассмотрении" in listing_html
    insurer = signed_in("reviewer-insurer")
    assert line.id in insurer.get("/insurer/services").text
    assert insurer.get("/insurer/figures").status_code == 200
    assert web.get("/insurer/services").status_code == 403


def test_region_admin_sets_a_tariff_used_for_new_lines(
    engine: Engine, demo: None, signed_in: Client, client: TestClient
) -> None:
    admin = signed_in("region77")
    page = admin.get("/admin/prices")
    assert page.status_code == 200
    assert "B01.047.002" in page.text
    bad = admin.post(
        "/admin/prices", data={"csrf_token": _csrf(page.text), "price:B01.047.002": "-1"}
    )
    assert bad.status_code == 422
    assert prices.price_list(engine, "77").price("B01.047.002") == prices.default_tariff(
        "77", "B01.047.002"
    )
    ok = admin.post(
        "/admin/prices", data={"csrf_token": _csrf(page.text), "price:B01.047.002": "999,50"}
    )
    assert ok.status_code == 303
    assert prices.price_list(engine, "77").price("B01.047.002") == Decimal("999.50")
    assert signed_in("patient").get("/admin/prices").status_code == 403
    # a new visit in region 77 is billed at the new tariff; old lines keep their price
    pid = patient_id(engine)
    old = {x.id: x.amount for x in lines_of(engine, pid)}
    patient = client.get(f"/fhir/Patient/{pid}").json()
    org = patient["managingOrganization"]["reference"]
    cov = client.get(f"/fhir/Coverage?beneficiary=Patient/{pid}").json()["entry"][0]["resource"]
    day = cov["period"]["start"][:10]
    resp = client.post(
        "/fhir/Encounter",
        json={
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "serviceType": {
                "coding": [{"system": "urn:oid:1.2.643.5.1.13.13.11.1070", "code": "B01.047.002"}]
            },
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": f"{day}T12:00:00+03:00"},
            "serviceProvider": {"reference": org},
        },
    )
    assert resp.status_code == 201
    generate.for_patient(engine, pid)
    new = next(x for x in lines_of(engine, pid) if x.source == f"Encounter/{resp.json()['id']}")
    if new.resource["extension"][1]["valueCoding"]["code"] == "77":
        assert new.amount == Decimal("999.50")
    assert all(x.amount == old[x.id] for x in lines_of(engine, pid) if x.id in old)
    accounts.get_by_login(engine, "region77@medcard.example")
