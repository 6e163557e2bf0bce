"""Demo sign-in accounts: one per role, linked to the demo population.

Passwords and the staff TOTP secrets are fixed (and listed in README.md), so anyone
trying the demo can sign in and add the secret to an authenticator app.  Never use
these outside a demo.

Patients get two accounts: an adult, and a parent whose child (under 15) is
represented the FHIR way, as a ``RelatedPerson`` in the child's compartment:

* ``patient`` = the child, ``relationship`` = ``MTH``/``FTH`` (v3 RoleCode, after the
  parent's gender), name, gender, birth date and telecom copied from the parent;
* ``identifier`` = the parent's SNILS (same system and value as on the parent's
  Patient): an indexed search parameter, so "whose parent is this patient" is
  ``RelatedPerson?identifier=urn:oid:1.2.643.100.3|<SNILS>``;
* extension :data:`RELATED_PATIENT_EXTENSION` with ``valueReference`` =
  ``Patient/<parent>``: the explicit pointer, for readers that hold the
  RelatedPerson already.  (FHIR's own ``Patient.link`` to a RelatedPerson would need
  the parent's Patient rewritten; this keeps the demo population untouched.)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from medcard import clock
from medcard.access.context import AccessContext
from medcard.auth import accounts
from medcard.auth.accounts import Role
from medcard.demo.catalogs import MEDCARD_FHIR_BASE
from medcard.fhir.local import call
from medcard.identifiers import SNILS_SYSTEM

RELATED_PATIENT_EXTENSION = f"{MEDCARD_FHIR_BASE}/StructureDefinition/related-person-patient"
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

DEMO_PASSWORD = "medcard-demo"  # noqa: S105 - a published demo password, by design
DEMO_PRACTITIONER = "prac-77-gp12-therapist-1"
DEMO_ORGANIZATION = "org-77-gp12"
DEMO_REGION = "77"
CHILD_MAX_AGE = 14  # "under 15"
# Reviewers of the authorities a report can go to (issue 7), besides the polyclinic's
# reviewer@; the insurer's is linked to the adult demo patient's insurer.
DEMO_AUTHORITY_REVIEWERS = (
    ("ministry", "doh", "Кравцова Елена Павловна"),
    ("watchdog", "rzn", "Степанов Олег Игоревич"),
    ("prosecutor", "prosecutor", "Григорьева Анна Михайловна"),
)


@dataclass(frozen=True)
class DemoAccount:
    login: str
    password: str
    role: Role
    display_name: str
    fhir_ref: str = ""
    organization_ref: str = ""
    region: str = ""
    totp_secret: str = ""
    note: str = ""


def demo_totp_secret(role: Role) -> str:
    """A fixed 160-bit base32 secret per staff role (the same on every install)."""
    digest = hashlib.sha256(f"medcard demo TOTP {role.value}".encode()).digest()[:20]
    return base64.b32encode(digest).decode()


def _staff() -> list[DemoAccount]:
    org = f"Organization/{DEMO_ORGANIZATION}"
    return [
        DemoAccount(
            "doctor@medcard.example",
            DEMO_PASSWORD,
            Role.PRACTITIONER,
            "",  # filled from the Practitioner resource
            fhir_ref=f"Practitioner/{DEMO_PRACTITIONER}",
            organization_ref=org,
            region=DEMO_REGION,
        ),
        DemoAccount(
            "registrar@medcard.example",
            DEMO_PASSWORD,
            Role.REGISTRAR,
            "Соколова Марина Викторовна",
            organization_ref=org,
            region=DEMO_REGION,
        ),
        DemoAccount(
            "admin@medcard.example",
            DEMO_PASSWORD,
            Role.ORG_ADMIN,
            "Белов Андрей Николаевич",
            organization_ref=org,
            region=DEMO_REGION,
        ),
        DemoAccount(
            "reviewer@medcard.example",
            DEMO_PASSWORD,
            Role.REVIEWER,
            "Орлова Наталья Сергеевна",
            organization_ref=org,
            region=DEMO_REGION,
        ),
        *(
            DemoAccount(
                f"reviewer-{kind}@medcard.example",
                DEMO_PASSWORD,
                Role.REVIEWER,
                name,
                organization_ref=f"Organization/org-{DEMO_REGION}-{key}",
                region=DEMO_REGION,
            )
            for kind, key, name in DEMO_AUTHORITY_REVIEWERS
        ),
        DemoAccount(
            "region77@medcard.example",
            DEMO_PASSWORD,
            Role.REGION_ADMIN,
            "Захаров Игорь Алексеевич",
            region=DEMO_REGION,
        ),
    ]


def _get(engine: Engine, ctx: AccessContext, path: str) -> dict[str, Any]:
    resp = call(engine, ctx, "GET", path)
    if resp.status != 200:
        return {}
    body: dict[str, Any] = orjson.loads(resp.body_bytes())
    return body


def _name(resource: dict[str, Any]) -> str:
    for name in resource.get("name", []):
        if name.get("text"):
            return str(name["text"])
        parts = [name.get("family", ""), *name.get("given", [])]
        if any(parts):
            return " ".join(p for p in parts if p)
    return ""


def _age(birth: str, today: dt.date) -> int:
    born = dt.date.fromisoformat(birth[:10])
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _snils(patient: dict[str, Any]) -> dict[str, Any] | None:
    return next((i for i in patient.get("identifier", []) if i.get("system") == SNILS_SYSTEM), None)


def _region(patient: dict[str, Any]) -> str:
    ref = str((patient.get("managingOrganization") or {}).get("reference", ""))
    parts = ref.removeprefix("Organization/").split("-")
    return parts[1] if len(parts) > 1 and parts[0] == "org" else ""


def _sort_key(patient: dict[str, Any]) -> tuple[bool, bool, bool, str]:
    """Prefer patients of the demo doctor, then of the demo clinic, then of region 77."""
    gps = {g.get("reference") for g in patient.get("generalPractitioner", [])}
    org = (patient.get("managingOrganization") or {}).get("reference")
    snils = (_snils(patient) or {}).get("value", patient["id"])
    return (
        f"Practitioner/{DEMO_PRACTITIONER}" not in gps,
        org != f"Organization/{DEMO_ORGANIZATION}",
        _region(patient) != DEMO_REGION,
        str(snils),
    )


def _choose_family(
    patients: list[dict[str, Any]], today: dt.date
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    """(adult, parent, child): deterministic for a seed, parent 20-45 at the child's birth."""
    dated = [p for p in patients if p.get("birthDate") and _snils(p)]
    adults = sorted((p for p in dated if _age(p["birthDate"], today) >= 18), key=_sort_key)
    children = sorted(
        (p for p in dated if _age(p["birthDate"], today) <= CHILD_MAX_AGE), key=_sort_key
    )
    adult = adults[0] if adults else None
    others = adults[1:]
    for child in children:
        child_age = _age(child["birthDate"], today)

        def fits(
            p: dict[str, Any], child: dict[str, Any] = child, child_age: int = child_age
        ) -> bool:
            gap = _age(p["birthDate"], today) - child_age
            return 20 <= gap <= 45 and _region(p) == _region(child)

        candidates = [p for p in others if fits(p)]
        if candidates:
            mothers = [p for p in candidates if p.get("gender") == "female"]
            return adult, (mothers or candidates)[0], child
    return adult, (others[0] if others else None), None


def _related_person(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    mother = parent.get("gender") == "female"
    code, display, text = ("MTH", "mother", "мать") if mother else ("FTH", "father", "отец")
    related: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "extension": [
            {
                "url": RELATED_PATIENT_EXTENSION,
                "valueReference": {"reference": f"Patient/{parent['id']}"},
            }
        ],
        "identifier": [_snils(parent)],
        "active": True,
        "patient": {"reference": f"Patient/{child['id']}"},
        "relationship": [
            {"coding": [{"system": V3_ROLE_CODE, "code": code, "display": display}], "text": text}
        ],
        "name": parent.get("name", []),
        "gender": parent.get("gender", "unknown"),
        "birthDate": parent["birthDate"],
    }
    if parent.get("telecom"):
        related["telecom"] = parent["telecom"]
    if parent.get("meta", {}).get("security"):  # demo data carries HTEST ("test health data")
        related["meta"] = {"security": parent["meta"]["security"]}
    return related


def _link_parent(
    engine: Engine, ctx: AccessContext, parent: dict[str, Any], child: dict[str, Any]
) -> str:
    """Create (once) the RelatedPerson saying ``parent`` is ``child``'s parent; its id."""
    snils = _snils(parent) or {}
    condition = f"identifier={SNILS_SYSTEM}|{snils.get('value', '')}&patient=Patient/{child['id']}"
    resp = call(
        engine,
        ctx,
        "POST",
        "RelatedPerson",
        _related_person(parent, child),
        headers={"If-None-Exist": condition, "Prefer": "return=representation"},
    )
    if resp.status not in (200, 201):
        raise RuntimeError(f"RelatedPerson for the demo parent failed: {resp.body_bytes()[:300]!r}")
    location = resp.headers.get("Location", "") or resp.headers.get("location", "")
    if resp.body is not None:
        body = orjson.loads(resp.body_bytes())
        if body.get("id"):
            return str(body["id"])
    return location.split("/_history")[0].rsplit("/", 1)[-1]


def plan_demo_accounts(engine: Engine) -> list[DemoAccount]:
    """Which accounts to create, linked to resources found in the store."""
    ctx = AccessContext.system("system:demo", purpose="demo accounts")
    planned: list[DemoAccount] = []
    for staff in _staff():
        name = staff.display_name
        if staff.role is Role.PRACTITIONER:
            name = _name(_get(engine, ctx, staff.fhir_ref)) or "Врач (демо)"
        planned.append(replace(staff, display_name=name, totp_secret=demo_totp_secret(staff.role)))
    bundle = _get(engine, ctx, "Patient?_count=1000")
    patients = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
    adult, parent, child = _choose_family(patients, clock.now().date())
    if adult is not None:
        planned.append(
            DemoAccount(
                "patient@medcard.example",
                DEMO_PASSWORD,
                Role.PATIENT,
                _name(adult),
                fhir_ref=f"Patient/{adult['id']}",
                region=_region(adult),
            )
        )
    if adult is not None:
        coverage = _get(engine, ctx, f"Coverage?beneficiary=Patient/{adult['id']}&_count=1")
        payors = [
            p.get("reference", "")
            for e in coverage.get("entry", [])
            for p in e.get("resource", {}).get("payor", [])
        ]
        if payors:
            planned.append(
                DemoAccount(
                    "reviewer-insurer@medcard.example",
                    DEMO_PASSWORD,
                    Role.REVIEWER,
                    "Лебедева Ольга Юрьевна",
                    organization_ref=payors[0],
                    region=DEMO_REGION,
                    totp_secret=demo_totp_secret(Role.REVIEWER),
                )
            )
    if parent is not None:
        note = ""
        if child is not None:
            related = _link_parent(engine, ctx, parent, child)
            note = f"parent of Patient/{child['id']} (RelatedPerson/{related})"
        planned.append(
            DemoAccount(
                "parent@medcard.example",
                DEMO_PASSWORD,
                Role.PATIENT,
                _name(parent),
                fhir_ref=f"Patient/{parent['id']}",
                region=_region(parent),
                note=note,
            )
        )
    return planned


def create_demo_accounts(engine: Engine) -> list[DemoAccount]:
    """Create the demo accounts that do not exist yet (existing logins are left alone)."""
    planned = plan_demo_accounts(engine)
    for demo in planned:
        if accounts.get_by_login(engine, demo.login) is not None:
            continue
        account = accounts.create_account(
            engine,
            demo.login,
            demo.password,
            demo.role,
            display_name=demo.display_name,
            fhir_ref=demo.fhir_ref,
            organization_ref=demo.organization_ref,
            region=demo.region,
        )
        if demo.totp_secret:
            accounts.enable_totp(engine, account.id, demo.totp_secret)
    return planned


def print_demo_accounts(demo_accounts: list[DemoAccount], console: Console) -> None:
    table = Table(title="Demo accounts (demo only: published passwords and TOTP secrets)")
    for column in ("login", "password", "role", "linked to", "TOTP secret"):
        table.add_column(column, overflow="fold")
    for a in demo_accounts:
        linked = " · ".join(x for x in (a.fhir_ref, a.organization_ref, a.note) if x)
        linked = linked or f"region {a.region}"
        table.add_row(a.login, a.password, a.role.value, linked, a.totp_secret or "—")
    console.print(table)
