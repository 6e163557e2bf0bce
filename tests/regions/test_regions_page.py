"""The public page «Что доступно в вашем регионе» (/regions) on the demo's regions,
which differ: Moscow with everything, St Petersburg without family history, Sverdlovsk
oblast without the diary and reached only through Gosuslugi."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.demo.regions import seed_demo_regions
from medcard.regions.features import ALL_FEATURES, Feature
from tests.regions.world import set_features
from tests.sso.conftest import standin_app

__all__ = ["standin_app"]  # the fixture used here

_ROW = re.compile(r'<tr data-feature="([a-z-]+)"><th scope="row">[^<]*</th>(.*?)</tr>', re.S)
_CELL = re.compile(r"<td[^>]*>([^<]*)</td>")
_REGION = re.compile(r'<th scope="col" data-region="(\w+)">')
_SIGN_IN = re.compile(r'<th scope="row">Как войти</th>(.*?)</tr>', re.S)


def _table(text: str) -> dict[str, dict[str, str]]:
    """feature → region code → «есть»/«нет», as the page shows it."""
    codes = _REGION.findall(text)
    return {
        feature: dict(zip(codes, (html.unescape(c) for c in _CELL.findall(cells)), strict=True))
        for feature, cells in _ROW.findall(text)
    }


def _sign_in(text: str) -> dict[str, str]:
    row = _SIGN_IN.search(text)
    assert row, text[:2000]
    return dict(zip(_REGION.findall(text), _CELL.findall(row.group(1)), strict=True))


def test_demo_regions_differ_on_the_public_page(app: Any, engine: Engine) -> None:
    seed_demo_regions(engine)
    with TestClient(app) as anonymous:  # no token, no session: a public page
        resp = anonymous.get("/regions")
    assert resp.status_code == 200
    assert "<h1>Что доступно в вашем регионе</h1>" in resp.text
    table = _table(resp.text)
    assert set(table) == {f.value for f in Feature}
    assert table["family-history"] == {"66": "есть", "77": "есть", "78": "нет"}
    assert table["diary"] == {"66": "нет", "77": "есть", "78": "есть"}
    assert table["registration"] == {"66": "нет", "77": "есть", "78": "есть"}
    # No national sign-in is configured in this app: nowhere «через Госуслуги».
    assert set(table["sso"].values()) == {"нет"}
    assert _sign_in(resp.text)["66"] == "только через регистратуру"
    assert "Asia/Yekaterinburg" in resp.text
    assert "3 раб. дн." in resp.text


def test_the_page_follows_the_configuration(app: Any, engine: Engine) -> None:
    seed_demo_regions(engine)
    set_features(engine, "77", ALL_FEATURES - {Feature.EXTRACTS})
    with TestClient(app) as anonymous:
        table = _table(anonymous.get("/regions").text)
        english = anonymous.get("/regions?lang=en").text
    assert table["extracts"]["77"] == "нет"
    assert "What your region offers" in english


def test_with_the_demo_provider_the_third_region_is_reached_only_through_gosuslugi(
    standin_app: str, engine: Engine
) -> None:
    seed_demo_regions(engine)
    page = httpx.get(f"{standin_app}/regions", timeout=10).text
    assert _table(page)["sso"] == {"66": "есть", "77": "есть", "78": "есть"}
    ways = _sign_in(page)
    assert ways["66"] == "через Госуслуги"
    assert ways["77"] == "через Госуслуги, регистрация с паролем"
    landing = httpx.get(f"{standin_app}/", timeout=10).text
    assert 'href="http://127.0.0.1:' in landing
    assert '/regions?lang=ru">Что доступно' in landing


def test_no_regions_configured(client: TestClient) -> None:
    resp = client.get("/regions")
    assert resp.status_code == 200
    assert "Регионы ещё не настроены" in resp.text
