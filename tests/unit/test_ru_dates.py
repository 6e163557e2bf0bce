"""Dates typed and shown as ДД.ММ.ГГГГ (ЧЧ:ММ), ISO accepted too (issue 20, item 4)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from medcard.ru_dates import (
    DATETIME_PATTERN,
    DAY_PATTERN,
    parse_day,
    parse_local,
    show_day,
    show_when,
)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("03.02.2025", dt.date(2025, 2, 3)),
        ("3.2.2025", dt.date(2025, 2, 3)),
        (" 29.02.2024 ", dt.date(2024, 2, 29)),
        ("2025-02-03", dt.date(2025, 2, 3)),
    ],
)
def test_days_in_russian_and_iso_form(text: str, day: dt.date) -> None:
    assert parse_day(text) == day
    assert re.fullmatch(DAY_PATTERN, text.strip())


@pytest.mark.parametrize(
    "text",
    ["02/03/2025", "2/3/2025", "31.02.2025", "29.02.2025", "03.13.2025", "3.2.25", "", "завтра",
     "2025-2-3", "03.02.2025 10:00"],
)  # fmt: skip
def test_other_day_forms_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the one error type the parser raises
        parse_day(text)


@pytest.mark.parametrize(
    ("text", "when", "timed"),
    [
        ("03.02.2025 10:05", dt.datetime(2025, 2, 3, 10, 5), True),  # noqa: DTZ001
        ("03.02.2025, 9:30", dt.datetime(2025, 2, 3, 9, 30), True),  # noqa: DTZ001
        ("03.02.2025", dt.datetime(2025, 2, 3), False),  # noqa: DTZ001
        ("2025-02-03T10:05", dt.datetime(2025, 2, 3, 10, 5), True),  # noqa: DTZ001
        ("2025-02-03 10:05:30", dt.datetime(2025, 2, 3, 10, 5, 30), True),  # noqa: DTZ001
        ("2025-02-03", dt.datetime(2025, 2, 3), False),  # noqa: DTZ001
    ],
)
def test_date_times_in_russian_and_iso_form(text: str, when: dt.datetime, timed: bool) -> None:
    assert parse_local(text) == (when, timed)
    assert re.fullmatch(DATETIME_PATTERN, text)


@pytest.mark.parametrize(
    "text", ["02/03/2025 10:00 AM", "03.02.2025 25:00", "03.02.2025 10:60", "03.02.2025T10:00"]
)
def test_other_date_time_forms_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_local(text)


def test_dates_are_shown_in_russian_form() -> None:
    assert show_day("1985-07-15") == "15.07.1985"
    assert show_day(dt.date(2025, 2, 3)) == "03.02.2025"
    assert show_day("2025-02-03T10:00:00+03:00") == "03.02.2025"
    assert show_day("1985-07") == "07.1985"
    assert show_day("1985") == "1985"
    assert show_day(None) == ""
    # instants in the clinic's zone (Moscow), whatever zone they were written in
    assert show_when("2025-02-03T07:00:00Z") == "03.02.2025 10:00"
    assert show_when("2025-02-03T10:00:00+03:00") == "03.02.2025 10:00"
    assert show_when("2025-02-03") == "03.02.2025"
    assert show_when("не дата, а текст") == "не дата, а текст"
