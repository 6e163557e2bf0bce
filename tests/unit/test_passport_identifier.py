"""The passport is identified as СЭМД does: НСИ 1.2.643.5.1.13.13.99.2.48, code 1."""

from __future__ import annotations

import re
from pathlib import Path

from medcard import identifiers as ids
from medcard.demo.population import patient_bundles
from medcard.onboarding.verification import record_passports

SRC = Path(ids.__file__).parent
LEGACY = "urn:oid:1.2.643.5.1.13.13.99.2.48.1"


def test_passport_identifier_is_typed_with_the_nsi_identity_document_code_1() -> None:
    ident = ids.passport_identifier("4510123456")
    first, second = ident["type"]["coding"]
    assert first == {
        "system": "urn:oid:1.2.643.5.1.13.13.99.2.48",
        "code": "1",
        "display": "Паспорт гражданина Российской Федерации",
    }
    assert second["code"] == "PPN"
    assert ident["system"] == ids.PASSPORT_SYSTEM
    assert ident["value"] == "4510123456"


def test_no_invented_sub_oid_of_the_identity_document_dictionary_is_written() -> None:
    assert ids.PASSPORT_SYSTEM != LEGACY
    assert not ids.PASSPORT_SYSTEM.startswith("urn:oid:")
    sub_oid = re.compile(r"1\.2\.643\.5\.1\.13\.13\.99\.2\.48\.\d")
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if sub_oid.search(p.read_text(encoding="utf-8")) and p.name != "identifiers.py"
    ]
    assert offenders == []


def test_old_data_with_the_legacy_system_is_still_read_as_a_passport() -> None:
    legacy = {"system": LEGACY, "value": "4510123456"}
    typed_only = {
        "system": "http://fhir.ru/core/systems/passport-RF",
        "type": {"coding": [{"system": ids.IDENTITY_DOCUMENT_SYSTEM, "code": "1"}]},
        "value": "4511654321",
    }
    snils = {"system": ids.SNILS_SYSTEM, "value": "11223344595"}
    assert ids.is_passport(legacy)
    assert ids.is_passport(typed_only)
    assert ids.is_passport(ids.passport_identifier("4512000001"))
    assert not ids.is_passport(snils)
    patient = {"identifier": [legacy, typed_only, snils]}
    assert record_passports(patient) == {"4510123456", "4511654321"}
    assert ids.passport_search("4510123456") == (
        f"{ids.PASSPORT_SYSTEM}|4510123456,{LEGACY}|4510123456"
    )


def test_demo_patients_carry_the_passport_as_sem_d_types_it() -> None:
    seen = 0
    for bundle in patient_bundles(20, seed=5):
        patient = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        for ident in patient["identifier"]:
            assert ident.get("system") != LEGACY
            if ids.is_passport(ident):
                assert ident == ids.passport_identifier(ident["value"])
                seen += 1
    assert seen > 5
