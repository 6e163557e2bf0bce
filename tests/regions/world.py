"""A small world for the region, diary and family-history tests: two regions (77 and
78), a polyclinic in each, a patient attached to each, patient and doctor accounts,
signed-in browsers for them, and tokens for the FHIR API."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.sessions import COOKIE_NAME, create_session
from medcard.regions.config import RegionSettings, get_region, make_config, save_region
from medcard.regions.features import ALL_FEATURES, Feature
from medcard.regions.lookup import forget_organizations

FHIR = "application/fhir+json"
PASSWORD = "длинный пароль для теста 42"
REGION_EXT = "https://medcard.example/fhir/StructureDefinition/region"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Person:
    http: TestClient
    csrf: str
    account: accounts.Account


@dataclass
class World:
    engine: Engine
    app: Any
    system: TestClient
    p77: str
    p78: str
    anna: Person  # patient of region 77
    boris: Person  # patient of region 78
    doctor: Person  # practitioner at the 77 polyclinic

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Accept": FHIR, "Content-Type": FHIR}


def org(code: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": f"poly-{code}",
        "name": f"Поликлиника {code}",
        "extension": [
            {
                "url": REGION_EXT,
                "valueCoding": {
                    "system": "https://medcard.example/fhir/CodeSystem/region",
                    "code": code,
                },
            }
        ],
    }


def set_features(engine: Engine, code: str, features: frozenset[Feature] | set[Feature]) -> None:
    current = get_region(engine, code)
    assert current is not None
    save_region(
        engine,
        make_config(
            code,
            current.name,
            current.time_zone,
            RegionSettings(
                features=frozenset(features), organizations=current.settings.organizations
            ),
        ),
        "system:test",
    )


def person(app: Any, engine: Engine, account: accounts.Account) -> Person:
    cookie, csrf = create_session(engine, account.id, mfa_ok=True)
    http = TestClient(app, base_url="http://testserver", follow_redirects=False)
    http.cookies.set(COOKIE_NAME, cookie)
    return Person(http, csrf, account)


def build(app: Any, engine: Engine, client: TestClient, make_patient: Callable[..., str]) -> World:
    forget_organizations()
    for code, name in (("77", "г. Москва"), ("78", "г. Санкт-Петербург")):
        r = client.put(
            f"/fhir/Organization/poly-{code}", json=org(code), headers={"Content-Type": FHIR}
        )
        assert r.status_code in (200, 201), r.text
        save_region(
            engine,
            make_config(code, name, "Europe/Moscow", RegionSettings(features=ALL_FEATURES)),
            "system:test",
        )
    r = client.put(
        "/fhir/Practitioner/doc-77",
        json={"resourceType": "Practitioner", "id": "doc-77", "name": [{"family": "Врачев"}]},
        headers={"Content-Type": FHIR},
    )
    assert r.status_code in (200, 201), r.text
    p77 = make_patient("Иванова", "Анна", "poly-77")
    p78 = make_patient("Петров", "Борис", "poly-78")
    n = len(accounts.list_accounts(engine))
    anna = accounts.create_account(
        engine, f"anna{n}@example.ru", PASSWORD, "patient", fhir_ref=f"Patient/{p77}"
    )
    boris = accounts.create_account(
        engine, f"boris{n}@example.ru", PASSWORD, "patient", fhir_ref=f"Patient/{p78}"
    )
    doctor = accounts.create_account(
        engine,
        f"doctor{n}@example.ru",
        PASSWORD,
        "practitioner",
        fhir_ref="Practitioner/doc-77",
        organization_ref="Organization/poly-77",
    )
    return World(
        engine,
        app,
        client,
        p77,
        p78,
        person(app, engine, anna),
        person(app, engine, boris),
        person(app, engine, doctor),
    )


def patient_maker(client: TestClient) -> Callable[..., str]:
    def make(family: str, given: str, org_id: str) -> str:
        r = client.post(
            "/fhir/Patient",
            json={
                "resourceType": "Patient",
                "name": [{"family": family, "given": [given]}],
                "birthDate": "1970-05-01",
                "managingOrganization": {"reference": f"Organization/{org_id}"},
                "generalPractitioner": [{"reference": "Practitioner/doc-77"}],
            },
            headers={"Content-Type": FHIR},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    return make


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field"
    return m.group(1)
