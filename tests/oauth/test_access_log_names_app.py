"""The patient's «Кто открывал карту» names the app for every read an app made with the
patient's token (issue 22, item 8), not «вы»; the patient's own reads stay «вы»."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from medcard.auth.oauth.clients import OAuthClient
from tests.oauth.conftest import Browser, bearer, observation


def _entries(html: str) -> list[str]:
    return re.findall(r'<li class="entry[^"]*">(.*?)</li>', html, flags=re.S)


def test_the_access_log_names_the_app(
    anna: Browser,
    diary: OAuthClient,
    api: TestClient,
    full_grant: dict[str, Any],
    patients: dict[str, str],
) -> None:
    pid = patients["anna"]
    app = bearer(full_grant["access_token"])
    made = api.post("/fhir/Observation", json=observation(pid), headers=app)
    assert made.status_code == 201, made.text
    r = api.get(f"/fhir/Observation?patient={pid}", headers=app)
    assert r.status_code == 200, r.text
    assert r.json()["entry"]
    assert anna.http.get(f"/card/{pid}").status_code == 200  # her own read, in the browser
    for path in (f"/card/{pid}/access-log", "/me/access-log"):
        page = anna.http.get(path)
        assert page.status_code == 200, page.text
        entries = _entries(page.text)
        by_app = [e for e in entries if "Приложение „Дневник самочувствия“" in e]
        assert by_app, path
        assert all('class="you"' not in e for e in by_app)
        # The app's own reads and writes with her token: named, "with your permission".
        for action in ("поиск: наблюдения", "добавление записи: наблюдения"):
            assert any("с вашего разрешения" in e and action in e for e in by_app), path
        # Her own reading of the card is still hers.
        assert any('class="you"' in e and "Приложение" not in e for e in entries), path
    english = anna.http.get(f"/card/{pid}/access-log?lang=en").text
    assert "App “Дневник самочувствия”" in english
