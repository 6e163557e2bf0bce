"""A parent switches to their child's card; the card's access log shows who opened it
and makes emergency (break-glass) accesses stand out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.access.subjects import dependants
from tests.records.conftest import patient_id

Client = Callable[[str], TestClient]


def test_parent_switches_to_the_childs_card(demo: None, engine: Engine, signed_in: Client) -> None:
    parent = patient_id(engine, "parent")
    children = dependants(engine, parent)
    assert children, "the demo parent has a child under 15"
    web = signed_in("parent")
    own = web.get(f"/card/{parent}")
    assert 'aria-label="Чья карта"' in own.text
    assert f'href="/card/{children[0]}"' in own.text
    child = web.get(f"/card/{children[0]}/vaccinations")
    assert child.status_code == 200
    assert "Национальный календарь прививок" in child.text
    assert "сделана" in child.text
    # ...but the child's card is not reachable by another patient
    stranger = signed_in("patient").get(f"/card/{children[0]}")
    assert stranger.status_code == 404


def test_access_log_highlights_emergency_access(
    demo: None,
    engine: Engine,
    signed_in: Client,
    app: Any,
    token: Callable[..., str],
) -> None:
    pid = patient_id(engine, "patient")
    client = TestClient(app, base_url="http://testserver")
    # a doctor from an organisation with no care relation opens the card in an emergency
    h = {
        "Authorization": "Bearer "
        + token(
            "user/*.cruds",
            subject="Practitioner/prac-78-gp1-therapist-1",
            extra={"role": "practitioner", "orgs": ["org-78-hospital"]},
        )
    }
    r = client.post(
        f"/fhir/Patient/{pid}/$break-glass",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "Доставлен без сознания"}],
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert client.get(f"/fhir/Patient/{pid}/$everything", headers=h).status_code == 200
    web = signed_in("patient")
    page = web.get(f"/card/{pid}/access-log")
    assert page.status_code == 200
    assert "Экстренных обращений к карте" in page.text
    assert "entry-emergency" in page.text
    only = web.get(f"/card/{pid}/access-log?emergency=1")
    assert only.text.count('class="entry entry-emergency') >= 1
    assert 'class="entry"' not in only.text
    assert "entry-you" not in only.text
