"""Locust scenario: patients, clinicians and integrators in realistic proportions.

Run by ``reliability/load.py`` as a subprocess (locust patches the standard library with
gevent, so it never runs inside pytest).  The data the users act on (ids, tokens) comes
from the JSON file named by ``MEDCARD_LOAD_FIXTURE``.

Proportions follow a regional portal: most traffic is patients reading their own card,
a third as much is clinicians looking up and writing, and a small share is systems
(laboratories, other portals) delivering results in transaction Bundles.
Request names are endpoint groups (``patient: card``), so the figures are per group.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

from locust import HttpUser, between, task

FIXTURE: dict[str, Any] = json.loads(open(os.environ["MEDCARD_LOAD_FIXTURE"]).read())  # noqa: SIM115
FHIR = "application/fhir+json"


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": FHIR, "Content-Type": FHIR}


class Patient(HttpUser):
    """A patient on the portal's API: their card, results, visits, vaccinations."""

    weight = 6
    wait_time = between(1, 3)

    def on_start(self) -> None:
        me = random.choice(FIXTURE["patients"])  # noqa: S311 - load mix
        self.pid = me["id"]
        self.h = _headers(me["token"])

    @task(4)
    def card(self) -> None:
        self.client.get(f"/fhir/Patient/{self.pid}", headers=self.h, name="patient: card")

    @task(4)
    def lab_results(self) -> None:
        self.client.get(
            f"/fhir/Observation?patient={self.pid}&category=laboratory&_sort=-date&_count=20",
            headers=self.h, name="patient: lab results",
        )  # fmt: skip

    @task(2)
    def visits(self) -> None:
        self.client.get(
            f"/fhir/Encounter?patient={self.pid}&_sort=-date&_count=20",
            headers=self.h, name="patient: visits",
        )  # fmt: skip

    @task(1)
    def vaccinations(self) -> None:
        self.client.get(
            f"/fhir/Immunization?patient={self.pid}", headers=self.h, name="patient: vaccinations"
        )

    @task(1)
    def diary(self) -> None:
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": f"Patient/{self.pid}"},
            "effectiveDateTime": "2025-06-01T08:00:00+03:00",
            "valueQuantity": {"value": random.randint(55, 95), "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},  # noqa: S311
        }  # fmt: skip
        self.client.post("/fhir/Observation", json=obs, headers=self.h, name="patient: diary entry")

    @task(1)
    def everything(self) -> None:
        self.client.get(
            f"/fhir/Patient/{self.pid}/$everything?_count=100",
            headers=self.h, name="patient: $everything",
        )  # fmt: skip


class Clinician(HttpUser):
    """A doctor at a polyclinic: finds patients, opens cards, records observations."""

    weight = 3
    wait_time = between(1, 4)

    def on_start(self) -> None:
        self.doc = random.choice(FIXTURE["clinicians"])  # noqa: S311
        self.h = _headers(self.doc["token"])

    def _patient(self) -> str:
        return str(random.choice(self.doc["patients"]))  # noqa: S311

    @task(3)
    def find_patient(self) -> None:
        family = random.choice(FIXTURE["families"])  # noqa: S311
        self.client.get(
            f"/fhir/Patient?family={family}&_count=20",
            headers=self.h,
            name="clinician: find patient",
        )

    @task(4)
    def open_card(self) -> None:
        pid = self._patient()
        self.client.get(f"/fhir/Patient/{pid}", headers=self.h, name="clinician: card")
        self.client.get(
            f"/fhir/Condition?patient={pid}", headers=self.h, name="clinician: problem list"
        )
        self.client.get(
            f"/fhir/DiagnosticReport?patient={pid}&_sort=-date&_count=10",
            headers=self.h, name="clinician: reports",
        )  # fmt: skip

    @task(2)
    def record_vitals(self) -> None:
        pid = self._patient()
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": "2025-06-01T10:00:00+03:00",
            "valueQuantity": {"value": random.randint(100, 160), "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},  # noqa: S311
        }  # fmt: skip
        self.client.post("/fhir/Observation", json=obs, headers=self.h, name="clinician: record")


class Integrator(HttpUser):
    """A laboratory information system or another portal, with a system token."""

    weight = 1
    wait_time = between(2, 5)

    def on_start(self) -> None:
        self.h = _headers(FIXTURE["system_token"])

    @task(3)
    def deliver_results(self) -> None:
        pid = random.choice(FIXTURE["patients"])["id"]  # noqa: S311
        key = uuid.uuid4().hex
        obs_urls = [f"urn:uuid:{uuid.uuid4()}" for _ in range(3)]
        codes = [("718-7", "Hemoglobin", 135, "g/L"), ("6690-2", "Leukocytes", 6.1, "10*9/L"), ("777-3", "Platelets", 250, "10*9/L")]  # fmt: skip
        entries: list[dict[str, Any]] = [
            {
                "fullUrl": url,
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "identifier": [{"system": "urn:lab:results", "value": f"{key}-{i}"}],
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": text}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": "2025-06-02T09:00:00+03:00",
                    "valueQuantity": {"value": value, "unit": unit},
                },
                "request": {"method": "POST", "url": "Observation", "ifNoneExist": f"identifier=urn:lab:results|{key}-{i}"},
            }
            for i, (url, (code, text, value, unit)) in enumerate(zip(obs_urls, codes, strict=True))
        ]  # fmt: skip
        entries.append(
            {
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "identifier": [{"system": "urn:lab:reports", "value": key}],
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC panel"}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "result": [{"reference": u} for u in obs_urls],
                },
                "request": {"method": "POST", "url": "DiagnosticReport", "ifNoneExist": f"identifier=urn:lab:reports|{key}"},
            }
        )  # fmt: skip
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        self.client.post("/fhir/", json=bundle, headers=self.h, name="integrator: transaction")

    @task(2)
    def changes_since(self) -> None:
        self.client.get(
            "/fhir/Observation?_lastUpdated=gt2020-01-01&_count=50",
            headers=self.h, name="integrator: changes",
        )  # fmt: skip

    @task(1)
    def capability(self) -> None:
        self.client.get("/fhir/metadata", headers=self.h, name="integrator: metadata")
