"""Dispanserization and the preventive examination by order 404н: a person born on a date,
a year, and what is due.  The age that counts is the one reached in the calendar year."""

from __future__ import annotations

import datetime as dt

import pytest

from medcard.prevention import (
    HEALTH_GROUPS_ADULT,
    HEALTH_GROUPS_MINOR,
    age_in_year,
    eligibility,
    health_groups_for,
)


def test_404n_p5_1_born_in_november_is_due_all_year_by_the_age_reached_in_november() -> None:
    born = dt.date(1990, 11, 20)
    exam_day = dt.date(2026, 3, 10)
    # 35 on the day of the examination, 36 reached in 2026: 36 is a dispanserization year
    assert exam_day.year - born.year - 1 == 35
    due = eligibility(born, exam_day.year)
    assert due.age == 36
    assert due.dispanserization
    assert due.kind == "dispanserization"
    assert "п. 5 подп. 1" in due.rule


def test_404n_p5_1_born_in_january_is_not_due_in_a_year_that_is_not_a_third() -> None:
    due = eligibility(dt.date(1991, 1, 5), 2026)
    assert due.age == 35
    assert not due.dispanserization
    assert due.preventive_exam
    assert due.kind == "prof-exam"


def test_404n_p5_1_first_dispanserization_in_the_year_of_the_18th_birthday() -> None:
    # born 31 December 2008: a minor on every day of 2026 but the last, still due in 2026
    due = eligibility(dt.date(2008, 12, 31), 2026)
    assert due.age == 18
    assert due.dispanserization
    assert eligibility(dt.date(2009, 1, 1), 2026).kind == ""


@pytest.mark.parametrize(("age", "due"), [(a, (a - 18) % 3 == 0) for a in range(18, 40)])
def test_404n_p5_1_once_in_three_years_from_18_to_39_inclusive(age: int, due: bool) -> None:
    assert eligibility(dt.date(2026 - age, 6, 15), 2026).dispanserization is due


def test_404n_p5_1_regional_list_of_birth_years_for_2025() -> None:
    # published for 2025: born 2007, 2004, 2001, 1998, 1995, 1992, 1989, 1986 (and 40+)
    listed = {2007, 2004, 2001, 1998, 1995, 1992, 1989, 1986}
    for year_of_birth in range(1986, 2008):
        for born in (dt.date(year_of_birth, 1, 1), dt.date(year_of_birth, 12, 31)):
            assert eligibility(born, 2025).dispanserization is (year_of_birth in listed), born


def test_404n_p5_2_yearly_from_the_year_one_turns_40_even_before_the_birthday() -> None:
    born = dt.date(1987, 12, 1)
    for year in (2027, 2028, 2029, 2030):
        due = eligibility(born, year)
        assert due.dispanserization, year
        assert "п. 5 подп. 2" in due.rule
    assert eligibility(born, 2026).dispanserization  # 39: the last of the three-yearly ones
    assert not eligibility(born, 2025).dispanserization  # 38


def test_404n_p5_2_listed_categories_are_due_yearly_at_any_adult_age() -> None:
    born = dt.date(2000, 5, 5)
    assert not eligibility(born, 2026).dispanserization  # 26
    assert eligibility(born, 2026, yearly_category=True).dispanserization
    assert not eligibility(dt.date(2012, 5, 5), 2026, yearly_category=True).dispanserization


def test_404n_preventive_exam_yearly_from_18_minors_are_not_under_404n() -> None:
    assert all(eligibility(dt.date(1970, 2, 2), y).preventive_exam for y in range(1988, 2030))
    minor = eligibility(dt.date(2010, 2, 2), 2026)
    assert minor.age == 16
    assert not minor.preventive_exam
    assert not minor.dispanserization


def test_age_in_year_is_the_age_reached_on_the_birthday_that_year() -> None:
    assert age_in_year(dt.date(1990, 12, 31), 2026) == 36
    assert age_in_year(dt.date(1990, 1, 1), 2026) == 36


def test_404n_adult_groups_and_514n_minor_groups_i_to_v() -> None:
    assert set(HEALTH_GROUPS_ADULT) == {"I", "II", "IIIa", "IIIb"}
    assert set(HEALTH_GROUPS_MINOR) == {"I", "II", "III", "IV", "V"}
    assert health_groups_for(17) is HEALTH_GROUPS_MINOR
    assert health_groups_for(18) is HEALTH_GROUPS_ADULT


def test_404n_demo_dispanserizations_fall_in_the_years_the_order_gives() -> None:
    from medcard.demo.population import patient_bundles

    checked = 0
    for bundle in patient_bundles(60, seed=3):
        resources = [e["resource"] for e in bundle["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        born = dt.date.fromisoformat(patient["birthDate"])
        for r in (r for r in resources if r["resourceType"] == "Encounter"):
            kinds = {c.get("code") for t in r.get("type") or () for c in t.get("coding") or ()}
            if "dispanserization" in kinds:
                year = int(r["period"]["start"][:4])
                assert eligibility(born, year).dispanserization, (born, r["period"])
                checked += 1
    assert checked > 10
