"""FHIR search over HTTP: every parameter type, modifiers, prefixes and result parameters.

https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from medcard import identifiers
from tests import factories
from tests.api.support import FHIR, Create, Search, assert_outcome, ids, link

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _obs(patient_id: str, **extra: Any) -> dict[str, Any]:
    return factories.observation(patient_id, **extra)


# -- token --------------------------------------------------------------------------


def test_token_code_alone_matches_any_system(search: Search, create: Create) -> None:
    p = create(factories.patient())
    a = create(_obs(p["id"], code="718-7"))
    b = create({**_obs(p["id"]), "code": {"coding": [{"code": "718-7"}]}})
    create(_obs(p["id"], code="2345-7"))
    assert set(ids(search("Observation", {"code": "718-7"}))) == {a["id"], b["id"]}


def test_token_system_and_code_match_only_that_system(search: Search, create: Create) -> None:
    p = create(factories.patient())
    a = create(_obs(p["id"], code="718-7"))
    create({**_obs(p["id"]), "code": {"coding": [{"code": "718-7"}]}})
    create({**_obs(p["id"]), "code": {"coding": [{"system": "urn:other", "code": "718-7"}]}})
    assert ids(search("Observation", {"code": f"{LOINC}|718-7"})) == [a["id"]]


def test_token_empty_system_matches_codes_without_a_system(search: Search, create: Create) -> None:
    p = create(factories.patient())
    create(_obs(p["id"], code="718-7"))
    b = create({**_obs(p["id"]), "code": {"coding": [{"code": "718-7"}]}})
    assert ids(search("Observation", {"code": "|718-7"})) == [b["id"]]


def test_token_system_alone_matches_every_code_of_that_system(
    search: Search, create: Create
) -> None:
    p = create(factories.patient())
    a = create(_obs(p["id"], code="718-7"))
    b = create(_obs(p["id"], code="2345-7"))
    create({**_obs(p["id"]), "code": {"coding": [{"system": "urn:other", "code": "718-7"}]}})
    assert set(ids(search("Observation", {"code": f"{LOINC}|"}))) == {a["id"], b["id"]}


def test_token_not_excludes_the_code_and_keeps_resources_without_it(
    search: Search, create: Create
) -> None:
    p = create(factories.patient())
    create(_obs(p["id"], code="718-7"))
    other = create(_obs(p["id"], code="2345-7"))
    assert ids(search("Observation", {"code:not": "718-7"})) == [other["id"]]
    male = create(factories.patient())
    unknown = create({k: v for k, v in factories.patient().items() if k != "gender"})
    female = create(factories.patient(gender="female"))
    found = set(ids(search("Patient", {"gender:not": "male"})))
    assert found == {unknown["id"], female["id"]}
    assert male["id"] not in found


def test_token_missing_true_and_false(search: Search, create: Create) -> None:
    p = create(factories.patient())
    with_category = create(_obs(p["id"]))
    without = create({k: v for k, v in _obs(p["id"]).items() if k != "category"})
    assert ids(search("Observation", {"category:missing": "true"})) == [without["id"]]
    assert ids(search("Observation", {"category:missing": "false"})) == [with_category["id"]]


def test_token_comma_means_or(search: Search, create: Create) -> None:
    p = create(factories.patient())
    a = create(_obs(p["id"], code="718-7"))
    b = create(_obs(p["id"], code="2345-7"))
    create(_obs(p["id"], code="1558-6"))
    assert set(ids(search("Observation", {"code": "718-7,2345-7"}))) == {a["id"], b["id"]}


def test_token_identifier_with_snils_system(search: Search, create: Create) -> None:
    p = create(factories.patient())
    create(factories.patient())
    snils = p["identifier"][0]["value"]
    found = search("Patient", {"identifier": f"{identifiers.SNILS_SYSTEM}|{snils}"})
    assert ids(found) == [p["id"]]


# -- string -------------------------------------------------------------------------


@pytest.fixture
def families(create: Create) -> dict[str, str]:
    return {
        family: create(factories.patient(family=family))["id"]
        for family in ("Иванов", "Иванова", "Семёнов", "Семенова", "Петров", "ИВАНЕНКО")
    }


def test_string_default_is_case_insensitive_prefix(
    search: Search, families: dict[str, str]
) -> None:
    found = set(ids(search("Patient", {"family": "иван"})))
    assert found == {families["Иванов"], families["Иванова"], families["ИВАНЕНКО"]}
    assert set(ids(search("Patient", {"family": "ИВАНОВ"}))) == {
        families["Иванов"],
        families["Иванова"],
    }


def test_string_search_treats_yo_and_ye_alike(search: Search, families: dict[str, str]) -> None:
    both = {families["Семёнов"], families["Семенова"]}
    assert set(ids(search("Patient", {"family": "семенов"}))) == both
    assert set(ids(search("Patient", {"family": "СЕМЁН"}))) == both


def test_string_exact_matches_whole_value_and_case(
    search: Search, families: dict[str, str]
) -> None:
    assert ids(search("Patient", {"family:exact": "Иванов"})) == [families["Иванов"]]
    assert ids(search("Patient", {"family:exact": "иванов"})) == []
    assert ids(search("Patient", {"family:exact": "Семенов"})) == []


def test_string_contains_matches_inside_the_value(search: Search, families: dict[str, str]) -> None:
    found = set(ids(search("Patient", {"family:contains": "ЕНО"})))
    assert found == {families["Семёнов"], families["Семенова"]}
    assert set(ids(search("Patient", {"family:contains": "нен"}))) == {families["ИВАНЕНКО"]}


def test_string_name_matches_given_names_too(search: Search, create: Create) -> None:
    anna = create(factories.patient(family="Смирнова", given="Анна"))
    create(factories.patient(family="Смирнова", given="Ольга"))
    assert ids(search("Patient", {"name": "анна"})) == [anna["id"]]
    assert ids(search("Patient", {"given": "Анн"})) == [anna["id"]]


def test_string_missing(search: Search, create: Create) -> None:
    with_address = create(factories.patient(address=[{"city": "Казань"}]))
    without = create(factories.patient())
    assert ids(search("Patient", {"address-city:missing": "false"})) == [with_address["id"]]
    assert ids(search("Patient", {"address-city:missing": "true"})) == [without["id"]]
    assert ids(search("Patient", {"address-city": "казань"})) == [with_address["id"]]


def test_string_search_escapes_like_wildcards(search: Search, create: Create) -> None:
    create(factories.patient(family="Иванов"))
    percent = create(factories.patient(family="100%_Тест"))
    assert ids(search("Patient", {"family": "%"})) == []
    assert ids(search("Patient", {"family": "_"})) == []
    assert ids(search("Patient", {"family:contains": "%_т"})) == [percent["id"]]


# -- date ---------------------------------------------------------------------------


@pytest.fixture
def dated(create: Create) -> dict[str, str]:
    """Observations at an instant, a day, a month and over a Period around March 2024."""
    p = create(factories.patient())

    def at(**effective: Any) -> str:
        obs = {k: v for k, v in _obs(p["id"]).items() if k != "effectiveDateTime"}
        return create({**obs, **effective})["id"]

    return {
        "dec31": at(effectiveDateTime="2023-12-31T23:00:00Z"),
        "mar01": at(effectiveDateTime="2024-03-01T10:00:00+03:00"),
        "mar15": at(effectiveDateTime="2024-03-15"),
        "may": at(effectiveDateTime="2024-05"),
        "feb_mar": at(effectivePeriod={"start": "2024-02-20", "end": "2024-03-10"}),
        "y2010": at(effectiveDateTime="2010-06-01"),
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03", {"mar01", "mar15"}),
        ("eq2024-03-15", {"mar15"}),
        ("2024", {"mar01", "mar15", "may", "feb_mar"}),
        ("2024-03-01", {"mar01"}),
        ("ne2024-03", {"dec31", "may", "feb_mar", "y2010"}),
        ("gt2024-03", {"may"}),
        ("lt2024-03", {"dec31", "feb_mar", "y2010"}),
        ("ge2024-03", {"mar01", "mar15", "may", "feb_mar"}),
        ("le2024-03", {"dec31", "mar01", "mar15", "feb_mar", "y2010"}),
        ("sa2024-03", {"may"}),
        ("eb2024-03", {"dec31", "y2010"}),
        ("sa2024-02-19", {"mar01", "mar15", "may", "feb_mar"}),
        ("eb2024-03-11", {"dec31", "mar01", "feb_mar", "y2010"}),
        ("gt2024-03-01T06:59:59Z", {"mar01", "mar15", "may", "feb_mar"}),
        ("lt2024-03-01T07:00:00Z", {"dec31", "feb_mar", "y2010"}),
        ("ge2024-03-01T07:00:00Z", {"mar01", "mar15", "may", "feb_mar"}),
    ],
)
def test_date_prefixes_on_instants_partial_dates_and_periods(
    search: Search, dated: dict[str, str], value: str, expected: set[str]
) -> None:
    names = {v: k for k, v in dated.items()}
    found = {names[i] for i in ids(search("Observation", {"date": value, "_count": "100"}))}
    assert found == expected


def test_date_ap_matches_near_values_and_not_far_ones(
    search: Search, dated: dict[str, str]
) -> None:
    names = {v: k for k, v in dated.items()}
    found = {names[i] for i in ids(search("Observation", {"date": "ap2024-03-05"}))}
    assert {"mar01", "feb_mar", "mar15"} <= found
    assert "y2010" not in found


def test_date_values_in_one_parameter_are_ored_and_repeats_are_anded(
    search: Search, dated: dict[str, str]
) -> None:
    names = {v: k for k, v in dated.items()}
    either = {names[i] for i in ids(search("Observation", {"date": "2024-03-15,2024-05"}))}
    assert either == {"mar15", "may"}
    window = [("date", "ge2024-03-02"), ("date", "le2024-04")]
    both = {names[i] for i in ids(search("Observation", window))}
    assert both == {"mar15", "feb_mar"}


@pytest.fixture
def encounters(create: Create) -> dict[str, str]:
    p = create(factories.patient())

    def enc(period: dict[str, str]) -> str:
        return create(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": f"Patient/{p['id']}"},
                "period": period,
            }
        )["id"]

    return {
        "jan10": enc({"start": "2024-01-10T09:00:00+03:00", "end": "2024-01-10T10:00:00+03:00"}),
        "jan31_feb02": enc({"start": "2024-01-31", "end": "2024-02-02"}),
        "open_mar": enc({"start": "2024-03-01T08:00:00Z"}),
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01", {"jan10"}),
        ("2024-01-10", {"jan10"}),
        ("ge2024-02", {"jan31_feb02", "open_mar"}),
        ("lt2024-02", {"jan10", "jan31_feb02"}),
        ("gt2030-01-01", {"open_mar"}),
        ("sa2024-01-31", {"open_mar"}),
        ("eb2024-02", {"jan10"}),
        ("ne2024-01", {"jan31_feb02", "open_mar"}),
        ("le2024-01-31", {"jan10", "jan31_feb02"}),
    ],
)
def test_date_search_on_encounter_periods(
    search: Search, encounters: dict[str, str], value: str, expected: set[str]
) -> None:
    names = {v: k for k, v in encounters.items()}
    assert {names[i] for i in ids(search("Encounter", {"date": value}))} == expected


# -- reference ----------------------------------------------------------------------


def test_reference_by_type_and_id_bare_id_and_type_modifier(search: Search, create: Create) -> None:
    a = create(factories.patient())
    b = create(factories.patient())
    oa = create(_obs(a["id"]))
    create(_obs(b["id"]))
    group = create({"resourceType": "Group", "type": "person", "actual": True})
    og = create({**_obs(a["id"]), "subject": {"reference": f"Group/{group['id']}"}})
    assert ids(search("Observation", {"subject": f"Patient/{a['id']}"})) == [oa["id"]]
    assert ids(search("Observation", {"subject": a["id"]})) == [oa["id"]]
    assert ids(search("Observation", {"patient": a["id"]})) == [oa["id"]]
    assert ids(search("Observation", {"subject:Patient": a["id"]})) == [oa["id"]]
    assert ids(search("Observation", {"subject:Group": a["id"]})) == []
    assert ids(search("Observation", {"subject:Group": group["id"]})) == [og["id"]]
    assert ids(search("Observation", {"patient": group["id"]})) == []


def test_reference_absolute_url_of_this_server(search: Search, create: Create) -> None:
    a = create(factories.patient())
    oa = create(_obs(a["id"]))
    url = f"http://testserver/fhir/Patient/{a['id']}"
    assert ids(search("Observation", {"subject": url})) == [oa["id"]]


def test_reference_missing(search: Search, create: Create) -> None:
    p = create(factories.patient())
    enc = create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{p['id']}"},
        }
    )
    linked = create(_obs(p["id"], encounter={"reference": f"Encounter/{enc['id']}"}))
    loose = create(_obs(p["id"]))
    assert ids(search("Observation", {"encounter:missing": "false"})) == [linked["id"]]
    assert ids(search("Observation", {"encounter:missing": "true"})) == [loose["id"]]


# -- quantity and number ------------------------------------------------------------


@pytest.fixture
def quantities(create: Create) -> dict[str, str]:
    p = create(factories.patient())
    out = {str(v): create(_obs(p["id"], value=v))["id"] for v in (95, 131, 150.5)}
    mmol = _obs(p["id"])
    mmol["valueQuantity"] = {"value": 131, "unit": "ммоль/л", "system": UCUM, "code": "mmol/L"}
    out["131mmol"] = create(mmol)["id"]
    return out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("131", {"131", "131mmol"}),
        ("131.0", {"131", "131mmol"}),
        ("eq150", set()),
        ("150.5", {"150.5"}),
        ("ne131", {"95", "150.5"}),
        ("gt131", {"150.5"}),
        ("ge131", {"131", "131mmol", "150.5"}),
        ("lt131", {"95"}),
        ("le131", {"95", "131", "131mmol"}),
        ("ap150", {"150.5"}),
        (f"131|{UCUM}|g/L", {"131"}),
        ("131||mmol/L", {"131mmol"}),
        (f"gt100|{UCUM}|g/L", {"131", "150.5"}),
        (f"131|{UCUM}|mg/dL", set()),
    ],
)
def test_quantity_prefixes_and_units(
    search: Search, quantities: dict[str, str], value: str, expected: set[str]
) -> None:
    names = {v: k for k, v in quantities.items()}
    found = {names[i] for i in ids(search("Observation", {"value-quantity": value}))}
    assert found == expected


@pytest.fixture
def risks(create: Create) -> dict[str, str]:
    p = create(factories.patient())

    def risk(probability: float) -> str:
        return create(
            {
                "resourceType": "RiskAssessment",
                "status": "final",
                "subject": {"reference": f"Patient/{p['id']}"},
                "prediction": [{"probabilityDecimal": probability}],
            }
        )["id"]

    return {"0.25": risk(0.25), "0.8": risk(0.8), "0.05": risk(0.05)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.25", {"0.25"}),
        ("0.8", {"0.8"}),
        ("gt0.5", {"0.8"}),
        ("ge0.25", {"0.25", "0.8"}),
        ("lt0.25", {"0.05"}),
        ("le0.25", {"0.05", "0.25"}),
        ("ne0.25", {"0.05", "0.8"}),
        ("0.80", {"0.8"}),
        ("0.4", set()),
    ],
)
def test_number_prefixes_on_risk_probability(
    search: Search, risks: dict[str, str], value: str, expected: set[str]
) -> None:
    names = {v: k for k, v in risks.items()}
    found = {names[i] for i in ids(search("RiskAssessment", {"probability": value}))}
    assert found == expected


# -- uri ----------------------------------------------------------------------------


def test_uri_matches_exactly_and_below(search: Search, create: Create) -> None:
    base = "https://medcard.example/fhir/ValueSet"
    vs = {
        name: create(
            {"resourceType": "ValueSet", "status": "active", "url": f"{base}/{name}", "name": name}
        )["id"]
        for name in ("lab", "lab-extra", "imaging")
    }
    assert ids(search("ValueSet", {"url": f"{base}/lab"})) == [vs["lab"]]
    assert set(ids(search("ValueSet", {"url:below": f"{base}/lab"}))) == {
        vs["lab"],
        vs["lab-extra"],
    }
    assert ids(search("ValueSet", {"url": f"{base}/LAB"})) == []


def test_uri_profile_on_meta(search: Search, create: Create) -> None:
    p = create(factories.patient())
    profile = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
    vital = create({**_obs(p["id"]), "meta": {"profile": [profile]}})
    create(_obs(p["id"]))
    assert ids(search("Observation", {"_profile": profile})) == [vital["id"]]


# -- _id and _lastUpdated -----------------------------------------------------------


def test_id_parameter_with_several_ids_and_not(search: Search, create: Create) -> None:
    a, b, c = (create(factories.patient())["id"] for _ in range(3))
    assert set(ids(search("Patient", {"_id": f"{a},{c}"}))) == {a, c}
    assert set(ids(search("Patient", {"_id:not": a}))) == {b, c}


def test_last_updated_filters_by_write_time(search: Search, create: Create) -> None:
    first = create(factories.patient())
    time.sleep(0.01)  # make the next write land in a later millisecond than the first
    second = create(factories.patient())
    stamp = first["meta"]["lastUpdated"]
    assert ids(search("Patient", {"_lastUpdated": f"gt{stamp}"})) == [second["id"]]
    assert ids(search("Patient", {"_lastUpdated": f"le{stamp}"})) == [first["id"]]
    assert len(ids(search("Patient", {"_lastUpdated": f"ge{stamp[:10]}"}))) == 2
    assert ids(search("Patient", {"_lastUpdated": "lt2000-01-01"})) == []


# -- sorting, paging, totals, summaries ---------------------------------------------


def test_sort_by_several_keys_and_descending(search: Search, create: Create) -> None:
    rows = [
        ("Петров", "1990-01-01"),
        ("Агеев", "1970-01-01"),
        ("Петров", "2001-01-01"),
        ("Яковлев", "1985-01-01"),
        ("Агеев", "1999-01-01"),
    ]
    made = {create(factories.patient(family=f, birthDate=d))["id"]: (f, d) for f, d in rows}
    got = [made[i] for i in ids(search("Patient", {"_sort": "family,-birthdate"}))]
    assert got == [
        ("Агеев", "1999-01-01"),
        ("Агеев", "1970-01-01"),
        ("Петров", "2001-01-01"),
        ("Петров", "1990-01-01"),
        ("Яковлев", "1985-01-01"),
    ]
    got = [made[i] for i in ids(search("Patient", {"_sort": "-family,birthdate"}))]
    assert got[0] == ("Яковлев", "1985-01-01")
    assert got[1:3] == [("Петров", "1990-01-01"), ("Петров", "2001-01-01")]
    by_date = [made[i][1] for i in ids(search("Patient", {"_sort": "-birthdate"}))]
    assert by_date == sorted(by_date, reverse=True)


def test_sort_by_last_updated_and_id(search: Search, create: Create) -> None:
    made = [create(factories.patient())["id"] for _ in range(4)]
    assert ids(search("Patient", {"_sort": "_lastUpdated"})) == made
    assert ids(search("Patient", {"_sort": "-_lastUpdated"})) == made[::-1]
    assert ids(search("Patient", {"_sort": "_id"})) == sorted(made)


def test_count_and_next_links_page_through_everything_once(
    client: TestClient, search: Search, create: Create
) -> None:
    made = {create(factories.patient())["id"] for _ in range(7)}
    seen: list[str] = []
    bundle = search("Patient", {"_count": "3", "_sort": "family"})
    pages = 1
    while True:
        page = ids(bundle)
        assert len(page) <= 3
        seen += page
        nxt = link(bundle, "next")
        if nxt is None:
            break
        assert nxt.startswith("http://testserver/fhir/Patient?")
        r = client.get(nxt)
        assert r.status_code == 200, r.text
        bundle = r.json()
        pages += 1
        assert pages < 10
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == made
    assert link(bundle, "previous") is not None


def test_paging_with_equal_sort_keys_is_stable(client: TestClient, create: Create) -> None:
    made = {create(factories.patient(family="Одинаков"))["id"] for _ in range(6)}
    seen: list[str] = []
    url: str | None = "/fhir/Patient?family=Одинаков&_sort=family&_count=2"
    while url:
        bundle = client.get(url).json()
        seen += ids(bundle)
        url = link(bundle, "next")
    assert sorted(seen) == sorted(made)


def test_total_accurate_counts_all_matches(search: Search, create: Create) -> None:
    for _ in range(5):
        create(factories.patient(family="Кузнецов"))
    create(factories.patient(family="Другой"))
    bundle = search("Patient", {"family": "кузнецов", "_count": "2", "_total": "accurate"})
    assert bundle["total"] == 5
    assert len(ids(bundle)) == 2


def test_summary_count_returns_only_the_total(search: Search, create: Create) -> None:
    for _ in range(3):
        create(factories.patient())
    bundle = search("Patient", {"_summary": "count"})
    assert bundle["total"] == 3
    assert "entry" not in bundle


def test_summary_true_keeps_summary_elements_and_marks_subsetted(
    search: Search, create: Create
) -> None:
    status = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    p = create(
        factories.patient(
            maritalStatus={"coding": [{"system": status, "code": "M"}]},
            text={
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
            },
        )
    )
    res = search("Patient", {"_summary": "true"})["entry"][0]["resource"]
    assert res["id"] == p["id"]
    assert res["name"] == p["name"]
    assert res["birthDate"] == "1980-05-17"
    assert "maritalStatus" not in res
    assert "text" not in res
    assert any(t["code"] == "SUBSETTED" for t in res["meta"]["tag"])


def test_elements_returns_only_the_named_elements(search: Search, create: Create) -> None:
    p = create(factories.patient())
    obs = create(_obs(p["id"]))
    res = search("Observation", {"_elements": "code,value"})["entry"][0]["resource"]
    assert res["id"] == obs["id"]
    assert res["code"] == obs["code"]
    assert res["valueQuantity"] == obs["valueQuantity"]
    assert "subject" not in res
    assert "status" not in res
    assert any(t["code"] == "SUBSETTED" for t in res["meta"]["tag"])


def test_elements_on_read(client: TestClient, create: Create) -> None:
    p = create(factories.patient())
    res = client.get(f"/fhir/Patient/{p['id']}", params={"_elements": "gender"}).json()
    assert res["gender"] == "male"
    assert "name" not in res
    assert any(t["code"] == "SUBSETTED" for t in res["meta"]["tag"])


# -- chaining, _include, _revinclude ------------------------------------------------


def test_chained_identifier_and_name(search: Search, create: Create) -> None:
    petrov = create(factories.patient(family="Петров"))
    sidorov = create(factories.patient(family="Сидоров"))
    op = create(_obs(petrov["id"]))
    os = create(_obs(sidorov["id"]))
    snils = petrov["identifier"][0]["value"]
    by_id = search("Observation", {"patient.identifier": f"{identifiers.SNILS_SYSTEM}|{snils}"})
    assert ids(by_id) == [op["id"]]
    # every factory patient's given names include "Петрович", so match on the family
    assert ids(search("Observation", {"subject:Patient.family": "петров"})) == [op["id"]]
    assert ids(search("Observation", {"subject:Patient.name": "сидор"})) == [os["id"]]
    assert ids(search("Observation", {"subject.family": "Петров"})) == [op["id"]]
    assert ids(search("Observation", {"patient.name": "Никто"})) == []


def test_chain_on_a_non_reference_parameter_is_refused(client: TestClient) -> None:
    r = client.get("/fhir/Observation", params={"code.name": "x"})
    assert_outcome(r, 400, "code")


def test_include_adds_referenced_resources(search: Search, create: Create) -> None:
    p = create(factories.patient())
    org = create(factories.organization())
    obs = create(_obs(p["id"], performer=[{"reference": f"Organization/{org['id']}"}]))
    bundle = search(
        "Observation",
        [("_include", "Observation:patient"), ("_include", "Observation:performer")],
    )
    assert ids(bundle) == [obs["id"]]
    assert set(ids(bundle, "include")) == {p["id"], org["id"]}
    modes = {e["resource"]["resourceType"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"Observation": "match", "Patient": "include", "Organization": "include"}


def test_include_with_target_type(search: Search, create: Create) -> None:
    p = create(factories.patient())
    org = create(factories.organization())
    create(_obs(p["id"], performer=[{"reference": f"Organization/{org['id']}"}]))
    bundle = search("Observation", {"_include": "Observation:performer:Practitioner"})
    assert ids(bundle, "include") == []


def test_revinclude_adds_resources_pointing_at_the_matches(search: Search, create: Create) -> None:
    p = create(factories.patient())
    other = create(factories.patient())
    obs = create(_obs(p["id"]))
    prov = create(
        {
            "resourceType": "Provenance",
            "target": [
                {"reference": f"Patient/{p['id']}"},
                {"reference": f"Observation/{obs['id']}"},
            ],
            "recorded": "2024-03-01T10:00:00+03:00",
            "agent": [{"who": {"display": "Регистратура"}}],
        }
    )
    create(
        {
            "resourceType": "Provenance",
            "target": [{"reference": f"Patient/{other['id']}"}],
            "recorded": "2024-03-01T10:00:00+03:00",
            "agent": [{"who": {"display": "Регистратура"}}],
        }
    )
    bundle = search("Patient", {"_id": p["id"], "_revinclude": "Provenance:target"})
    assert ids(bundle) == [p["id"]]
    assert ids(bundle, "include") == [prov["id"]]
    bundle = search(
        "Observation",
        [
            ("patient", p["id"]),
            ("_revinclude", "Provenance:target"),
            ("_include", "Observation:subject"),
        ],
    )
    assert ids(bundle) == [obs["id"]]
    assert set(ids(bundle, "include")) == {prov["id"], p["id"]}


def test_malformed_include_is_refused(client: TestClient) -> None:
    assert_outcome(
        client.get("/fhir/Observation", params={"_include": "Observation"}), 400, "_include"
    )
    r = client.get("/fhir/Observation", params={"_include": "Observation:code"})
    assert_outcome(r, 400, "Observation:code")
    r = client.get("/fhir/Observation", params={"_include": "Patient:organization"})
    assert_outcome(r, 400, "Observation")


# -- POST _search, errors, lenient handling -----------------------------------------


def test_post_search_with_form_body(client: TestClient, create: Create) -> None:
    p = create(factories.patient(family="Формов"))
    create(factories.patient(family="Другой"))
    r = client.post(
        "/fhir/Patient/_search",
        data={"family": "формов", "_count": "5"},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert ids(r.json()) == [p["id"]]


def test_post_search_merges_url_and_form_parameters(client: TestClient, create: Create) -> None:
    a = create(factories.patient(family="Формов", gender="female"))
    create(factories.patient(family="Формов"))
    r = client.post("/fhir/Patient/_search?gender=female", data={"family": "Формов"})
    assert r.status_code == 200, r.text
    assert ids(r.json()) == [a["id"]]


def test_post_search_needs_a_form_body(client: TestClient) -> None:
    r = client.post("/fhir/Patient/_search", content=b"{}", headers={"Content-Type": FHIR})
    assert_outcome(r, 415, "x-www-form-urlencoded")


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"nonsense": "1"}, "nonsense"),
        ({"family:fuzzy": "x"}, ":fuzzy"),
        ({"birthdate": "17.05.1980"}, "17.05.1980"),
        ({"birthdate": "2024-13-01"}, "2024-13-01"),
        ({"_lastUpdated": "yesterday"}, "yesterday"),
        ({"_count": "many"}, "_count"),
        ({"_count": "-1"}, "_count"),
        ({"_sort": "shoe-size"}, "shoe-size"),
        ({"_summary": "maybe"}, "_summary"),
        ({"_total": "lots"}, "_total"),
        ({"gender:missing": "perhaps"}, "missing"),
        ({"gender": ""}, "empty"),
        ({"general-practitioner": "Practitioner/1/2"}, "Practitioner/1/2"),
        ({"link.given.family": "x"}, "chaining"),
        ({"_contained": "true"}, "_contained"),
        ({"pa$ient": "1"}, "pa$ient"),
    ],
)
def test_unknown_or_malformed_parameters_are_refused(
    client: TestClient, params: dict[str, str], word: str
) -> None:
    assert_outcome(client.get("/fhir/Patient", params=params), 400, word)


def test_lenient_handling_ignores_unknown_parameters_with_a_warning(
    search: Search, create: Create
) -> None:
    p = create(factories.patient(family="Мягков"))
    create(factories.patient(family="Другой"))
    bundle = search("Patient", {"family": "мягков", "nonsense": "1"}, prefer="handling=lenient")
    assert ids(bundle) == [p["id"]]
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    issue = outcomes[0]["issue"][0]
    assert issue["severity"] == "warning"
    assert "nonsense" in issue["diagnostics"]


def test_strict_handling_is_the_default(client: TestClient) -> None:
    r = client.get("/fhir/Patient", params={"nonsense": "1"}, headers={"Prefer": "handling=strict"})
    assert_outcome(r, 400, "nonsense")


def test_search_of_unknown_type_is_refused(client: TestClient) -> None:
    r = client.get("/fhir/Patients", params={"name": "x"})
    assert r.status_code in (400, 404)
    assert_outcome(r, r.status_code, "Patients")


def test_deleted_resources_are_not_found_by_search(
    search: Search, client: TestClient, create: Create
) -> None:
    p = create(factories.patient(family="Удалов"))
    assert client.delete(f"/fhir/Patient/{p['id']}").status_code == 200
    assert ids(search("Patient", {"family": "Удалов"})) == []
    assert search("Patient", {"family": "Удалов", "_summary": "count"})["total"] == 0


def test_updated_resources_are_found_by_their_new_values_only(
    search: Search, client: TestClient, create: Create
) -> None:
    p = create(factories.patient(family="Старов"))
    r = client.put(f"/fhir/Patient/{p['id']}", json={**p, "name": [{"family": "Новов"}]})
    assert r.status_code == 200, r.text
    assert ids(search("Patient", {"family": "Старов"})) == []
    assert ids(search("Patient", {"family": "Новов"})) == [p["id"]]
