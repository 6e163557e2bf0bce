"""Verification codes and the signed record, without a database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc.jwk import ECKey

from medcard.extracts import verification as v
from medcard.extracts.bundle import bundle_bytes
from medcard.extracts.render import Extract, Period, render_pdf

KEY = ECKey.generate_key("P-256", parameters={"kid": "test"})
RECORD = v.Record(
    code="ABCDE2347" + v._check_char("ABCDE2347"),
    pdf_sha256="a" * 64,
    bundle_sha256="b" * 64,
    issued="2025-03-01T10:00:00+00:00",
    initials="И. П. С.",
    sections=("labs", "vaccinations"),
    start="2024-01-01",
)


def test_new_codes_are_well_formed_unambiguous_and_distinct() -> None:
    codes = {v.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert len(code) == 10
        assert v.well_formed(code)
        assert not set(code) & set("0O1ILS")


@given(st.integers(0, 9), st.sampled_from(v.ALPHABET))
def test_check_character_catches_every_single_wrong_character(pos: int, ch: str) -> None:
    code = "7KQ2MZX9P" + v._check_char("7KQ2MZX9P")
    typo = code[:pos] + ch + code[pos + 1 :]
    assert v.well_formed(typo) == (typo == code)


def test_check_character_catches_swapped_neighbours() -> None:
    code = "7KQ2MZX9P" + v._check_char("7KQ2MZX9P")
    for i in range(9):
        swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
        if swapped != code:
            assert not v.well_formed(swapped), swapped


def test_codes_are_typed_loosely_but_checked_strictly() -> None:
    code = RECORD.code
    assert v.normalise(f" {code[:5].lower()}-{code[5:]} ") == code
    assert v.pretty(code) == f"{code[:5]}-{code[5:]}"
    assert not v.well_formed("")
    assert not v.well_formed("ABCDE")
    assert not v.well_formed("O" * 10)
    assert not v.well_formed("'; DROP TABLE resources; --")


def test_signed_record_round_trips_and_any_edit_breaks_it() -> None:
    token = v.sign(RECORD, KEY)
    assert v.unsign(token, KEY) == RECORD
    header, payload, sig = token.split(".")
    forged = v.sign(replace(RECORD, pdf_sha256="c" * 64), KEY).split(".")[1]
    assert v.unsign(f"{header}.{forged}.{sig}", KEY) is None  # payload swapped, old signature
    other = ECKey.generate_key("P-256")
    assert v.unsign(token, other) is None  # signed by someone else's key
    assert v.unsign("not a token", KEY) is None
    assert v.unsign(f"{header}.{payload}.", KEY) is None


def test_initials_reveal_only_first_letters() -> None:
    patient = {"name": [{"use": "official", "family": "Иванова", "given": ["Мария", "Петровна"]}]}
    assert v.initials_of(patient) == "И. М. П."
    assert v.initials_of({"name": [{"text": "Пётр Сидоров"}]}) == "П. С."
    assert v.initials_of({}) == ""


def test_the_code_is_found_in_the_pdf_and_in_the_bundle() -> None:
    extract = Extract(
        code=RECORD.code,
        issued=dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC),
        lang="ru",
        base_url="https://medcard.example",
        system_name="medcard",
        patient={"resourceType": "Patient", "id": "p1", "name": [{"family": "Ёлкина"}]},
        period=Period(),
        sections=[],
    )
    assert v.code_in_file(render_pdf(extract)) == RECORD.code
    assert (
        v.code_in_file(
            bundle_bytes({"identifier": {"system": v.CODE_SYSTEM, "value": RECORD.code}})
        )
        == RECORD.code
    )
    assert v.code_in_file(b"%PDF-1.4 nothing here") == ""
    assert v.code_in_file(b"{not json") == ""


@pytest.mark.parametrize(
    ("start", "end", "day", "inside"),
    [
        (None, None, "1990-01-01", True),
        (dt.date(2024, 1, 1), None, "2023-12-31", False),
        (dt.date(2024, 1, 1), dt.date(2024, 6, 30), "2024-06-30", True),
        (dt.date(2024, 1, 1), dt.date(2024, 6, 30), "2024-07-01", False),
        (dt.date(2024, 1, 1), dt.date(2024, 6, 30), "", True),  # undated: a diagnosis
    ],
)
def test_period_bounds_are_inclusive(
    start: dt.date | None, end: dt.date | None, day: str, inside: bool
) -> None:
    assert Period(start, end).contains(day) is inside
