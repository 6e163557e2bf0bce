"""A card written with the old passport system is still found by its passport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard import attachment
from medcard import identifiers as ids
from medcard.access.context import AccessContext
from medcard.fhir import local
from medcard.fhir.store.repository import Repository

LEGACY = "urn:oid:1.2.643.5.1.13.13.99.2.48.1"
PASSPORT = "4510987654"


def _old_card(engine: Engine) -> str:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": LEGACY, "value": PASSPORT}],
        "name": [{"use": "official", "family": "Ветрова", "given": ["Нина", "Павловна"]}],
        "gender": "female",
        "birthDate": "1971-08-09",
    }
    resp = local.call(engine, AccessContext.system("system:test"), "POST", "Patient", patient)
    assert resp.status == 201, resp.body_bytes()
    return str(json.loads(resp.body_bytes())["id"])


def test_attaching_with_the_passport_finds_a_card_stored_under_the_old_system(
    demo: None, engine: Engine, repo_of: Callable[[str], Repository]
) -> None:
    pid = _old_card(engine)
    person = attachment.parse_person(
        {
            "family": "Ветрова",
            "given": "Нина",
            "middle": "Павловна",
            "birth_date": "1971-08-09",
            "gender": "female",
            "passport": "45 10 987654",
        }
    )
    found = attachment.find_matches(repo_of("registrar"), person)
    assert [s.id for s in found.by_identifier] == [pid]
    assert ids.passport_identifier(PASSPORT) in person.resource()["identifier"]


def test_workspace_search_by_passport_finds_old_and_new_cards(
    demo: None, engine: Engine, signed_in: Callable[[str], TestClient]
) -> None:
    pid = _old_card(engine)
    reg = signed_in("registrar")
    page = reg.get("/workspace/search", params={"q": "4510 987654"})
    assert page.status_code in (200, 303), page.text
    assert pid in (page.headers.get("location", "") + page.text)
