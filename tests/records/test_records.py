"""medcard.records without the web: where resources land, what never shows, lab flags
and trends, the vaccination calendar and the timeline filters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from medcard.access.policy import ENTERED_BY_SYSTEM
from medcard.records import (
    build_card,
    calendar,
    lab_series,
    parse_filters,
    section_of,
    timeline,
    trend_svg,
)

THO = "http://terminology.hl7.org/CodeSystem"
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "2024-01-10",
           "name": [{"family": "Иванова", "given": ["Мария"]}],
           "managingOrganization": {"reference": "Organization/o1"},
           "generalPractitioner": [{"reference": "Practitioner/d1"}]}  # fmt: skip
SHARED = [
    {"resourceType": "Organization", "id": "o1", "name": "Поликлиника № 1"},
    {"resourceType": "Organization", "id": "lab", "name": "Лаборатория <Анализ>"},
    {"resourceType": "Practitioner", "id": "d1",
     "name": [{"family": "Петров", "given": ["Пётр", "Петрович"]}]},
]  # fmt: skip


def _cat(system: str, code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code}]}]


def _obs(oid: str, day: str, value: float, *, low: float = 120, high: float = 160,
         interp: str | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    res: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": _cat(f"{THO}/observation-category", "laboratory"),
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "Гемоглобин"},
        "effectiveDateTime": day, "valueQuantity": {"value": value, "unit": "г/л"},
        "referenceRange": [{"low": {"value": low, "unit": "г/л"}, "high": {"value": high, "unit": "г/л"}}],
        "performer": [{"reference": "Organization/lab"}],
        **extra,
    }  # fmt: skip
    if interp:
        res["interpretation"] = [{"coding": [{"code": interp}]}]
    return res


@pytest.mark.parametrize(
    ("resource", "section"),
    [
        ({"resourceType": "DiagnosticReport", "category": _cat(f"{THO}/v2-0074", "CT")}, "imaging"),
        ({"resourceType": "DiagnosticReport", "category": _cat(f"{THO}/v2-0074", "HM")}, "labs"),
        ({"resourceType": "DiagnosticReport", "imagingStudy": [{"reference": "ImagingStudy/1"}]}, "imaging"),
        ({"resourceType": "DocumentReference", "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]}}, "protocols"),
        ({"resourceType": "DocumentReference", "category": _cat("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note")}, "protocols"),
        ({"resourceType": "DocumentReference", "type": {"text": "Справка"}}, "documents"),
        ({"resourceType": "Encounter", "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "410620009"}]}]}, "exams"),
        ({"resourceType": "Encounter"}, "visits"),
        ({"resourceType": "Observation", "category": _cat(f"{THO}/observation-category", "vital-signs")}, "measurements"),
        ({"resourceType": "Composition"}, "protocols"),
        ({"resourceType": "MedicationRequest"}, "prescriptions"),
        ({"resourceType": "Patient"}, ""),
    ],
)  # fmt: skip
def test_resources_from_any_system_land_in_their_section(
    resource: dict[str, Any], section: str
) -> None:
    assert section_of(resource) == section


def test_entered_in_error_never_shows_and_patient_entries_are_labelled() -> None:
    wrong = _obs("o-wrong", "2024-05-01", 130, status="entered-in-error")
    refuted = {"resourceType": "Condition", "id": "c1", "code": {"text": "Ошибка"},
               "verificationStatus": {"coding": [{"code": "entered-in-error"}]}}  # fmt: skip
    mine = _obs("o-mine", "2024-05-02", 130,
                meta={"tag": [{"system": ENTERED_BY_SYSTEM, "code": "patient"}]})  # fmt: skip
    card = build_card("p1", PATIENT, [wrong, refuted, mine], SHARED)
    assert card.entry("Observation", "o-wrong") is None
    assert card.entry("Condition", "c1") is None
    shown = card.entry("Observation", "o-mine")
    assert shown is not None
    assert shown.patient_entered


def test_lab_report_holds_its_results_with_flags_and_sources() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final",
              "category": _cat(f"{THO}/v2-0074", "LAB"), "code": {"text": "Общий анализ крови"},
              "effectiveDateTime": "2024-05-01T09:00:00+03:00",
              "performer": [{"reference": "Organization/lab"}],
              "result": [{"reference": "Observation/a"}, {"reference": "Observation/b"}]}  # fmt: skip
    low = _obs("a", "2024-05-01T09:00:00+03:00", 100)  # no interpretation: from the range
    fine = _obs("b", "2024-05-01T09:00:00+03:00", 140, interp="N")
    card = build_card("p1", PATIENT, [report, low, fine], SHARED)
    labs = card.section("labs")
    assert [e.id for e in labs] == ["r1"]
    assert {c.id for c in labs[0].children} == {"a", "b"}
    assert labs[0].out_of_range
    assert labs[0].organization == "Лаборатория <Анализ>"
    a = card.entry("Observation", "a")
    assert a is not None
    assert a.flag == "L"
    assert not a.listed
    assert ("reference_range", "120 – 160 г/л") in a.details


def test_trend_series_and_chart_are_escaped() -> None:
    points = [_obs(f"o{i}", f"2024-0{i}-01", v) for i, v in enumerate((130, 170, 110), 1)]
    card = build_card("p1", PATIENT, points, SHARED)
    (series,) = lab_series(card)
    assert series.key == "718-7"
    assert [p.value for p in series.points] == [130, 170, 110]
    assert [p.flag for p in series.points] == ["N", "H", "L"]
    svg = trend_svg(series, label='<script>alert("x")</script>')
    assert svg.startswith("<svg")
    assert "<script>" not in svg
    assert svg.count("<rect") >= 3  # frame, range band, out-of-range points as squares


def test_vaccination_calendar_done_due_overdue_planned() -> None:
    def vaccine(vid: str, key: str, dose: int, day: str) -> dict[str, Any]:
        return {"resourceType": "Immunization", "id": vid, "status": "completed",
                "vaccineCode": {"coding": [{"system": "https://medcard.example/fhir/CodeSystem/vaccine", "code": key}]},
                "occurrenceDateTime": day, "protocolApplied": [{"doseNumberPositiveInt": dose}]}  # fmt: skip

    shots = [vaccine("v1", "hepb", 1, "2024-01-10"), vaccine("v2", "bcg", 1, "2024-01-14")]
    card = build_card("p1", PATIENT, shots, SHARED, today=dt.date(2024, 3, 20))
    status = {(d.vaccine, d.dose): d.status for d in calendar(card)}
    assert status[("hepb", 1)] == "done"
    assert status[("bcg", 1)] == "done"
    assert status[("hepb", 2)] == "overdue"  # due 2024-02-09, more than a month ago
    assert status[("pcv", 1)] == "due"  # due 2024-03-10
    assert status[("mmr", 1)] == "planned"


def test_timeline_filters_and_their_errors() -> None:
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished",
           "type": [{"text": "Приём терапевта"}], "period": {"start": "2024-02-01T10:00:00+03:00"},
           "serviceProvider": {"reference": "Organization/o1"},
           "reasonCode": [{"text": "Острый бронхит"}]}  # fmt: skip
    card = build_card("p1", PATIENT, [enc, _obs("o1", "2024-05-01", 130)], SHARED)
    f, errors = parse_filters("01.01.2024", "2024-03-01", "o1", "visits", "БРОНХИТ")
    assert not errors
    assert [e.id for e in timeline(card, f)] == ["e1"]
    f, errors = parse_filters(query="гемоглобин лаборатория")
    assert [e.id for e in timeline(card, f)] == ["o1"]
    _, errors = parse_filters("2024-13-01", "x", "Organization/../x", "nope", "q" * 300)
    assert errors.problems == {"from": "bad_date", "to": "bad_date", "org": "bad_org",
                               "type": "bad_type", "q": "bad_query"}  # fmt: skip


def test_overview_names_polyclinic_physician_and_active_diagnoses() -> None:
    active = {"resourceType": "Condition", "id": "c1", "clinicalStatus": {"coding": [{"code": "active"}]},
              "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}], "text": "Гипертензия"},
              "recordedDate": "2023-01-01", "recorder": {"reference": "Practitioner/d1"}}  # fmt: skip
    gone = {**active, "id": "c2", "clinicalStatus": {"coding": [{"code": "resolved"}]}}
    ov = build_card("p1", PATIENT, [active, gone], SHARED).overview()
    assert ov.polyclinic == "Поликлиника № 1"
    assert ov.physician == "Петров П. П."
    assert [e.id for e in ov.diagnoses] == ["c1"]
