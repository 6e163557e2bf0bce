"""Search parsing, value ranges, path evaluation and indexing, without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from medcard.access.policy import Restriction
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search import query
from medcard.fhir.search.indexer import index_rows
from medcard.fhir.search.params import parse, split_prefix, split_values
from medcard.fhir.search.paths import evaluate, reference_type
from medcard.fhir.search.values import date_range, fold, number_range

US_PER_DAY = 86_400_000_000


def test_partial_dates_cover_their_whole_period() -> None:
    year = date_range("2024")
    day = date_range("2024-02-29")
    assert year[1] - year[0] + 1 == 366 * US_PER_DAY
    assert day[1] - day[0] + 1 == US_PER_DAY
    assert year[0] <= day[0]
    assert day[1] <= year[1]


def test_date_time_zone_is_respected() -> None:
    moscow = date_range("2024-03-01T10:00:00+03:00")
    utc = date_range("2024-03-01T07:00:00Z")
    assert moscow == utc


@pytest.mark.parametrize("bad", ["2024-13", "2024-02-30", "24-01-01", "2024/01/01", "", "today"])
def test_malformed_dates_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"date|day|month"):
        date_range(bad)


@given(st.dates(), st.times())
def test_any_valid_datetime_parses_to_a_one_second_range(d, t) -> None:  # type: ignore[no-untyped-def]
    text = f"{d.isoformat()}T{t.replace(microsecond=0).isoformat()}+03:00"
    low, high = date_range(text)
    assert high - low + 1 == 1_000_000


def test_number_precision_gives_implicit_range() -> None:
    assert number_range("100") == (100.0, 99.5, 100.5)
    _v, low, high = number_range("100.00")
    assert (low, high) == pytest.approx((99.995, 100.005))


def test_folding_ignores_case_accents_and_yo() -> None:
    assert fold("Семёнов") == fold("СЕМЕНОВ")
    assert fold("José") == "jose"


def test_value_splitting_honours_escapes() -> None:
    assert split_values(r"a,b\,c") == ("a", "b,c")
    assert split_prefix("ge2024") == ("ge", "2024")
    assert split_prefix("2024") == ("eq", "2024")
    assert split_prefix("eq") == ("eq", "eq")


def test_reference_type_handles_absolute_and_history_urls() -> None:
    assert reference_type("Patient/1") == "Patient"
    assert reference_type("http://x/fhir/Patient/1/_history/2") == "Patient"
    assert reference_type("urn:uuid:1234") is None


def test_paths_follow_choice_types_and_filters() -> None:
    patient = {
        "resourceType": "Patient",
        "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}],
    }
    assert evaluate(patient, [{"name": "telecom", "where": {"system": "phone"}}]) == [
        {"system": "phone", "value": "1"}
    ]
    obs = {
        "resourceType": "Observation",
        "effectivePeriod": {"start": "2020"},
        "subject": {"reference": "Group/1"},
    }
    assert evaluate(obs, ["effective[x]"]) == [{"start": "2020"}]
    assert evaluate(obs, [{"name": "subject", "resolve": "Patient"}]) == []


def test_indexer_extracts_every_type() -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "Гемоглобин"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-03-01",
        "valueQuantity": {"value": 131, "system": "http://unitsofmeasure.org", "code": "g/L"},
    }
    rows = index_rows(obs, "p1")
    tokens = {(r["param"], r["system"], r["code"]) for r in rows["token"]}
    assert ("code", "http://loinc.org", "718-7") in tokens
    assert ("status", None, "final") in tokens
    refs = {(r["param"], r["target_type"], r["target_id"]) for r in rows["reference"]}
    assert ("patient", "Patient", "p1") in refs
    assert ("subject", "Patient", "p1") in refs
    assert {r["param"] for r in rows["date"]} == {"date"}
    assert rows["quantity"][0]["value"] == 131.0
    assert all(r["patient_id"] == "p1" for table in rows.values() for r in table)


def test_parse_recognises_modifiers_chains_and_result_params() -> None:
    req = parse(
        "Observation",
        [
            ("code:not", "1"),
            ("patient.identifier", "s|v"),
            ("_sort", "-date,_id"),
            ("_count", "10"),
            ("_include", "Observation:patient"),
            ("_summary", "count"),
        ],
    )
    assert [f.modifier for f in req.filters] == ["not", None]
    assert req.filters[1].chain is not None
    assert req.filters[1].chain.target_type == "Patient"
    assert req.sort == [("date", True), ("_id", False)]
    assert req.count == 10
    assert req.summary == "count"
    assert req.include[0].param == "patient"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("nosuch", "1"),
        ("date", "yesterday"),
        ("value-quantity", "gtabc"),
        ("_count", "-1"),
        ("code:contains", "x"),
        ("subject.nosuch", "1"),
        ("_sort", "nosuch"),
        ("gender:missing", "maybe"),
    ],
)
def test_parse_rejects_bad_parameters_with_400(key: str, value: str) -> None:
    with pytest.raises(FhirError) as err:
        parse("Observation" if key != "gender:missing" else "Patient", [(key, value)])
    assert err.value.status == 400


def test_lenient_handling_turns_unknown_parameters_into_warnings() -> None:
    req = parse("Patient", [("nosuch", "1"), ("gender", "male")], lenient=True)
    assert len(req.filters) == 1
    assert req.warnings
    assert req.warnings[0].severity == "warning"


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_patient_restriction_is_in_every_generated_query(dialect: object) -> None:
    req = parse("Observation", [("code", "718-7"), ("date", "ge2024")])
    stmt = query.search_statement(req, Restriction(frozenset({"p1"})))
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[arg-type]
    assert "resources.patient_id IN ('p1')" in sql
    assert "sp_token" in sql
    assert "sp_date" in sql


def test_patient_filter_on_compartment_parameter_pins_the_compartment() -> None:
    req = parse("Observation", [("patient", "Patient/p9")])
    sql = str(
        query.search_statement(req, Restriction(None)).compile(
            compile_kwargs={"literal_binds": True}
        )
    )
    assert "resources.patient_id IN ('p9')" in sql


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_string_values_never_break_sql_building(text: str) -> None:
    req = parse("Patient", [("name", text)])
    stmt = query.search_statement(req, Restriction(None))
    stmt.compile(dialect=postgresql.dialect())
