"""The card says what 404н offers this year and whether it is done."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.records import Card, Entry, checkup_due
from tests.records.conftest import patient_id


def _card(born: str, today: dt.date, exams: tuple[str, ...] = ()) -> Card:
    entries = [Entry("Encounter", f"e{n}", "exams", d, "Осмотр") for n, d in enumerate(exams)]
    return Card("p1", {"resourceType": "Patient", "birthDate": born}, entries, {}, today)


def test_404n_p5_1_due_from_january_for_a_november_birthday_and_not_yet_done() -> None:
    due = checkup_due(_card("1990-11-20", dt.date(2026, 3, 10)))
    assert due is not None
    assert (due.year, due.age, due.kind) == (2026, 36, "dispanserization")
    assert "п. 5 подп. 1" in due.rule
    assert not due.done


def test_a_check_up_this_year_marks_it_done_last_years_does_not() -> None:
    due = checkup_due(_card("1990-11-20", dt.date(2026, 9, 1), ("2025-12-20", "2026-02-01T10:00")))
    assert due is not None
    assert due.done_on == "2026-02-01"
    last_year = checkup_due(_card("1990-11-20", dt.date(2026, 9, 1), ("2025-12-20",)))
    assert last_year is not None
    assert not last_year.done


def test_404n_between_dispanserization_years_a_preventive_check_up_is_due() -> None:
    due = checkup_due(_card("1991-01-05", dt.date(2026, 3, 10)))
    assert due is not None
    assert due.kind == "prof-exam"


def test_minors_and_cards_without_a_birth_date_get_nothing_from_404n() -> None:
    assert checkup_due(_card("2012-05-05", dt.date(2026, 3, 10))) is None
    assert checkup_due(_card("", dt.date(2026, 3, 10))) is None


def test_the_patients_card_shows_this_years_check_up_with_the_orders_line(
    demo: None, engine: Engine, signed_in: Callable[[str], TestClient]
) -> None:
    pid = patient_id(engine, "patient")
    html = signed_in("patient").get(f"/card/{pid}").text
    assert "Профилактика в этом году" in html
    assert "27.04.2021 № 404н" in html
