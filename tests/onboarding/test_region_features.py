"""A region that turns a route off: its pages answer 403 with the reason, nothing is made."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from medcard.auth import accounts
from medcard.auth.accounts import Account
from medcard.db.tables import resources
from medcard.regions.config import RegionSettings, make_config, save_region
from medcard.regions.features import ALL_FEATURES, Feature
from medcard.regions.lookup import forget_organizations
from tests.onboarding.conftest import ORG
from tests.onboarding.test_pages import _check, _csrf, _register, _sign_in

CHECK_FIELD = 'name="check" value="'


@pytest.fixture
def region_without(engine: Engine) -> Iterator[Callable[[Feature], None]]:
    """A region "99" holding the test polyclinic, with one feature turned off."""

    def turn_off(feature: Feature) -> None:
        forget_organizations()
        save_region(
            engine,
            make_config(
                "99",
                "Тестовая область",
                "Europe/Moscow",
                RegionSettings(features=ALL_FEATURES - {feature}, organizations=(ORG,)),
            ),
            "system:test",
        )

    yield turn_off
    forget_organizations()


def _tasks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(resources)
                .where(resources.c.resource_type == "Task")
            ).scalar_one()
        )


def test_registration_route_off_refuses_the_request_with_a_reason(
    web: Any, engine: Engine, card: str, region_without: Callable[[Feature], None]
) -> None:
    region_without(Feature.REGISTRATION)
    _register(web)
    checked = _check(web)
    assert checked.status_code == 200
    sealed = checked.text.split(CHECK_FIELD, 1)[1].split('"', 1)[0]
    filed = web.post("/access/request", data={"check": sealed, "csrf_token": _csrf(checked.text)})
    assert filed.status_code >= 400
    assert "Госуслугами" in filed.text
    account = accounts.get_by_login(engine, "new@example.org")
    assert account is not None
    assert not account.fhir_ref
    assert _tasks(engine) == 0


def test_document_requests_off_answers_403_and_files_nothing(
    web: Any,
    engine: Engine,
    card: str,
    make_account: Callable[..., Account],
    region_without: Callable[[Feature], None],
) -> None:
    account = make_account(fhir_ref=f"Patient/{card}")
    _sign_in(web, engine, account)
    token = _csrf(web.get("/access/consent").text)
    region_without(Feature.DOCUMENT_REQUESTS)
    page = web.get("/access/documents")
    assert page.status_code == 403
    assert "Тестовая область" in page.text
    r = web.post("/access/documents", data={"kind": "lab", "csrf_token": token})
    assert r.status_code == 403
    assert _tasks(engine) == 0
