"""``medcard demo`` creates a signed-in way into every role, linked to the demo data."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.auth import accounts
from medcard.auth.accounts import ACCOUNT_ROLES, STAFF_ROLES, Role
from medcard.clock import now
from medcard.demo.accounts import (
    DEMO_PASSWORD,
    RELATED_PATIENT_EXTENSION,
    V3_ROLE_CODE,
    demo_totp_secret,
)
from medcard.demo.loader import load_demo
from medcard.fhir.local import call
from tests.auth.conftest import sign_in

README = Path(__file__).resolve().parents[2] / "README.md"


def read(engine: Engine, path: str) -> dict[str, Any]:
    resp = call(engine, AccessContext.system(), "GET", path)
    assert resp.status == 200, path
    body: dict[str, Any] = orjson.loads(resp.body_bytes())
    return body


def test_demo_creates_an_account_for_every_role(engine: Engine, web: TestClient) -> None:
    out = io.StringIO()
    load_demo(engine, 12, console=Console(file=out, width=250))
    printed = out.getvalue()
    made = accounts.list_accounts(engine)
    assert {a.role for a in made} == set(ACCOUNT_ROLES)
    for account in made:
        assert account.login in printed
        assert accounts.authenticate(engine, account.login, DEMO_PASSWORD).ok
        if account.role in STAFF_ROLES:
            assert account.totp_enabled
            assert account.totp_secret == demo_totp_secret(account.role)
            assert account.totp_secret in printed
    doctor = accounts.get_by_login(engine, "doctor@medcard.example")
    assert doctor is not None
    assert doctor.fhir_ref == "Practitioner/prac-77-gp12-therapist-1"
    assert doctor.organization_ref == "Organization/org-77-gp12"
    assert doctor.display_name  # taken from the Practitioner resource
    read(engine, doctor.fhir_ref)
    read(engine, doctor.organization_ref)

    # The parent: a linked Patient, and a RelatedPerson in a child's compartment.
    parent = accounts.get_by_login(engine, "parent@medcard.example")
    assert parent is not None
    assert parent.role is Role.PATIENT
    parent_patient = read(engine, parent.fhir_ref)
    snils = next(i for i in parent_patient["identifier"] if i["system"] == "urn:oid:1.2.643.100.3")
    found = read(engine, f"RelatedPerson?identifier=urn:oid:1.2.643.100.3|{snils['value']}")
    (entry,) = found["entry"]
    related = entry["resource"]
    assert related["relationship"][0]["coding"][0]["system"] == V3_ROLE_CODE
    assert related["relationship"][0]["coding"][0]["code"] in ("MTH", "FTH")
    (pointer,) = [e for e in related["extension"] if e["url"] == RELATED_PATIENT_EXTENSION]
    assert pointer["valueReference"]["reference"] == parent.fhir_ref
    child = read(engine, related["patient"]["reference"])
    born = child["birthDate"]
    today = now().date()
    age = (
        today.year - int(born[:4]) - ((today.month, today.day) < (int(born[5:7]), int(born[8:10])))
    )
    assert age < 15

    patient = accounts.get_by_login(engine, "patient@medcard.example")
    assert patient is not None
    assert patient.fhir_ref.startswith("Patient/")
    assert patient.fhir_ref != parent.fhir_ref
    sign_in(web, engine, patient, DEMO_PASSWORD)

    # Loading again adds patients but neither duplicates accounts nor the RelatedPerson.
    load_demo(engine, 2, seed=2, console=Console(file=io.StringIO()))
    assert len(accounts.list_accounts(engine)) == len(made)
    again = read(engine, f"RelatedPerson?identifier=urn:oid:1.2.643.100.3|{snils['value']}")
    assert len(again["entry"]) == 1


def test_readme_lists_the_demo_accounts() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Demo accounts", 1)[1]
    assert DEMO_PASSWORD in section
    for role in STAFF_ROLES:
        assert demo_totp_secret(role) in section
    for login in ["doctor@medcard.example", "patient@medcard.example", "parent@medcard.example"]:
        assert login in section
