"""A patient acts for their children under 15 and their legal wards, and for nobody else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.access.roles import Role
from medcard.access.subjects import dependants, token_claims
from medcard.identifiers import SNILS_SYSTEM
from tests import factories

V3 = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def _post(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _represented_by(client: TestClient, parent_snils: str, dependant: str, code: str) -> None:
    _post(
        client,
        {
            "resourceType": "RelatedPerson",
            "active": True,
            "patient": {"reference": f"Patient/{dependant}"},
            "identifier": [{"system": SNILS_SYSTEM, "value": parent_snils}],
            "relationship": [{"coding": [{"system": V3, "code": code}]}],
            "name": [{"family": "Кузнецова", "given": ["Мария"]}],
        },
    )


def test_children_under_15_and_wards_are_dependants(client: TestClient, engine: Engine) -> None:
    parent = factories.patient(
        family="Кузнецова", given="Мария", gender="female", birthDate="1985-04-02"
    )
    parent_id = _post(client, parent)
    snils = parent["identifier"][0]["value"]
    child = _post(
        client, factories.patient(family="Кузнецов", given="Илья", birthDate="2016-09-01")
    )
    grown = _post(
        client, factories.patient(family="Кузнецов", given="Павел", birthDate="2005-01-15")
    )
    ward = _post(client, factories.patient(family="Орлов", given="Семён", birthDate="1950-03-03"))
    stranger = _post(
        client, factories.patient(family="Чужой", given="Ребёнок", birthDate="2019-05-05")
    )
    _represented_by(client, snils, child, "MTH")
    _represented_by(client, snils, grown, "MTH")
    _represented_by(client, snils, ward, "GUARD")
    found = dependants(engine, parent_id, today=date(2026, 11, 26))
    assert found == sorted([child, ward])
    assert stranger not in found
    assert token_claims(engine, Role.PATIENT, f"Patient/{parent_id}")["patients"] == dependants(
        engine, parent_id
    )


def test_a_parent_token_reaches_the_child_card_but_not_the_grown_up_one(
    client: TestClient, engine: Engine, token: Callable[..., str]
) -> None:
    parent = factories.patient(family="Лебедева", given="Ольга", gender="female")
    parent_id = _post(client, parent)
    child = _post(client, factories.patient(family="Лебедев", given="Миша", birthDate="2020-02-02"))
    grown = _post(
        client, factories.patient(family="Лебедев", given="Антон", birthDate="1999-02-02")
    )
    for kid in (child, grown):
        _represented_by(client, parent["identifier"][0]["value"], kid, "MTH")
    child_obs = _post(client, factories.observation(child))
    grown_obs = _post(client, factories.observation(grown))
    claims = token_claims(engine, Role.PATIENT, f"Patient/{parent_id}")
    h = {"Authorization": f"Bearer {token('patient/*.rs', patient=parent_id, extra=claims)}"}
    assert client.get(f"/fhir/Observation/{child_obs}", headers=h).status_code == 200
    assert client.get(f"/fhir/Observation/{grown_obs}", headers=h).status_code == 404
