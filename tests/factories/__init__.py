"""Builders of valid FHIR resources with Russian data for tests."""

from __future__ import annotations

import itertools
from typing import Any

from medcard import identifiers

_seq = itertools.count(100_000_001)


def snils() -> str:
    return identifiers.make_snils(f"{next(_seq):09d}"[-9:])


def patient(family: str = "Иванов", given: str = "Иван", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": identifiers.SNILS_SYSTEM, "value": snils()}],
        "name": [{"family": family, "given": [given, "Петрович"]}],
        "gender": "male",
        "birthDate": "1980-05-17",
        **extra,
    }


def observation(
    patient_id: str,
    code: str = "718-7",
    value: float = 131.0,
    date: str = "2024-03-01T10:00:00+03:00",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": date,
        "valueQuantity": {
            "value": value,
            "unit": "g/L",
            "system": "http://unitsofmeasure.org",
            "code": "g/L",
        },
        **extra,
    }


def organization(name: str = "ГБУЗ «Городская поликлиника № 12 ДЗМ»") -> dict[str, Any]:
    return {"resourceType": "Organization", "active": True, "name": name}
