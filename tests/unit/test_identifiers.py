"""SNILS, ENP, passport and OGRN: parsing, control digits, formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medcard import identifiers as ids
from medcard.identifiers import IdentifierError

nine_digits = st.integers(min_value=1_001_999, max_value=999_999_999).map(lambda n: f"{n:09d}")
fifteen_digits = st.integers(min_value=0, max_value=10**15 - 1).map(lambda n: f"{n:015d}")


def _luhn_check_digit(body: str) -> int:
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def _snils_sum(first9: str) -> int:
    return sum(int(d) * (9 - i) for i, d in enumerate(first9))


# --- SNILS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    ["112-233-445 95", "11223344595", "112 233 445 95", "112-233-445-95", " 112233445 95 "],
)
def test_snils_pension_fund_example_is_valid_however_written(written: str) -> None:
    assert ids.is_valid_snils(written)
    assert ids.validate_snils(written) == "11223344595"
    assert ids.format_snils(written) == "112-233-445 95"


def test_snils_with_wrong_control_number_is_refused_with_both_languages() -> None:
    assert not ids.is_valid_snils("112-233-445 96")
    with pytest.raises(IdentifierError, match=r"СНИЛС.*expected 95"):
        ids.validate_snils("112-233-445 96")


@pytest.mark.parametrize(
    ("first9", "expected"),
    [
        ("112233445", 95),  # sum below 100 is the control number
        ("024234029", 0),  # sum 100
        ("131330634", 0),  # sum 101
        ("109987031", 0),  # sum 201: mod 101 gives 100, which becomes 00
        ("631368659", 0),  # sum 202: mod 101 gives 0
        ("999999999", 1),  # sum 405: mod 101
    ],
)
def test_snils_check_number_special_cases(first9: str, expected: int) -> None:
    assert ids.snils_check_number(first9) == expected


def test_snils_up_to_001_001_998_is_exempt_from_the_check() -> None:
    assert ids.is_valid_snils("001-001-998 00")
    assert ids.is_valid_snils("000-000-001 77")
    assert not ids.is_valid_snils("001-001-999 00")  # first number that is checked
    assert ids.is_valid_snils(ids.make_snils("001001999"))


@pytest.mark.parametrize(
    "bad",
    ["", "1122334459", "112233445950", "112-233-445 9x", "СНИЛС 11223344595", "112.233.445 95"],
)
def test_snils_of_wrong_shape_is_refused(bad: str) -> None:
    assert not ids.is_valid_snils(bad)
    with pytest.raises(IdentifierError):
        ids.normalize_snils(bad)


def test_snils_non_ascii_digits_are_refused() -> None:
    with pytest.raises(IdentifierError):
        ids.normalize_snils("١١٢٢٣٣٤٤٥٩٥")  # Arabic-Indic digits pass str.isdigit()


def test_snils_check_number_needs_nine_digits() -> None:
    with pytest.raises(IdentifierError):
        ids.snils_check_number("12345678")


@given(nine_digits)
def test_made_snils_always_validates_and_round_trips_through_format(first9: str) -> None:
    snils = ids.make_snils(first9)
    assert len(snils) == 11
    assert ids.validate_snils(snils) == snils
    assert ids.validate_snils(ids.format_snils(snils)) == snils


@given(nine_digits, st.integers(min_value=9, max_value=10), st.integers(min_value=1, max_value=9))
def test_changing_a_control_digit_breaks_snils(first9: str, position: int, shift: int) -> None:
    snils = ids.make_snils(first9)
    changed = snils[:position] + str((int(snils[position]) + shift) % 10) + snils[position + 1 :]
    assert not ids.is_valid_snils(changed)


@given(nine_digits, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9))
def test_changing_a_number_digit_breaks_snils_except_in_the_zero_class(
    first9: str, position: int, shift: int
) -> None:
    """The official algorithm maps sums 100, 101 and those ≡ 0 or 100 (mod 101)
    to 00, so a typo moving the sum within that class goes unnoticed; every
    other single-digit typo is caught."""
    changed9 = (
        first9[:position] + str((int(first9[position]) + shift) % 10) + first9[position + 1 :]
    )
    changed = changed9 + ids.make_snils(first9)[9:]

    def zero_class(total: int) -> bool:
        return total in (100, 101) or (total > 101 and total % 101 in (0, 100))

    if int(changed9) <= 1_001_998:
        assert ids.is_valid_snils(changed)  # exempt range
    else:
        both_zero = zero_class(_snils_sum(first9)) and zero_class(_snils_sum(changed9))
        assert ids.is_valid_snils(changed) == both_zero


# --- ENP -------------------------------------------------------------------------


def test_enp_worked_example_from_the_ffoms_appendix() -> None:
    # Г.2: digits 845199912289999 → odd 99829958 * 2, even 9921914 → sum 90 → 0
    assert ids.enp_check_digit("845199912289999") == 0
    assert ids.make_enp("845199912289999") == "8451999122899990"
    assert ids.enp_checksum_ok("8451999122899990")
    assert ids.validate_enp("8451 9991 2289 9990") == "8451999122899990"


def test_enp_with_wrong_control_digit_is_refused() -> None:
    assert not ids.enp_checksum_ok("8451999122899991")
    with pytest.raises(IdentifierError, match=r"ЕНП.*expected 0"):
        ids.validate_enp("8451999122899991")


@pytest.mark.parametrize("bad", ["", "845199912289999", "84519991228999900", "8451999122899a90"])
def test_enp_format_is_exactly_sixteen_digits(bad: str) -> None:
    assert not ids.enp_checksum_ok(bad)
    with pytest.raises(IdentifierError):
        ids.validate_enp_format(bad)


def test_enp_format_check_does_not_look_at_the_control_digit() -> None:
    assert ids.validate_enp_format("8451-9991-2289-9991") == "8451999122899991"


@given(fifteen_digits)
def test_enp_control_digit_is_luhn_over_the_first_fifteen(first15: str) -> None:
    assert ids.enp_check_digit(first15) == _luhn_check_digit(first15)


@given(
    fifteen_digits, st.integers(min_value=0, max_value=15), st.integers(min_value=1, max_value=9)
)
def test_changing_any_one_digit_breaks_the_enp(first15: str, position: int, shift: int) -> None:
    enp = ids.make_enp(first15)
    assert ids.enp_checksum_ok(enp)
    changed = enp[:position] + str((int(enp[position]) + shift) % 10) + enp[position + 1 :]
    assert not ids.enp_checksum_ok(changed)


def test_enp_check_digit_needs_fifteen_digits() -> None:
    with pytest.raises(IdentifierError):
        ids.enp_check_digit("12345")


# --- passport ------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["45 06 123456", "4506 123456", "4506123456", "45 06 № 123456"])
def test_passport_is_normalised_and_formatted(written: str) -> None:
    assert ids.normalize_passport(written) == "4506123456"
    assert ids.validate_passport(written) == "4506123456"
    assert ids.format_passport(written) == "45 06 123456"


@pytest.mark.parametrize(
    "bad", ["45 06 12345", "45 06 1234567", "АБ 06 123456", "0000 123456", "4506 000000"]
)
def test_passport_of_wrong_shape_or_placeholder_is_refused(bad: str) -> None:
    with pytest.raises(IdentifierError):
        ids.validate_passport(bad)


# --- OGRN ----------------------------------------------------------------------------


@pytest.mark.parametrize("ogrn", ["1027700132195", "1037739877295", "1027739609391"])
def test_real_ogrns_validate(ogrn: str) -> None:
    assert ids.is_valid_ogrn(ogrn)
    assert ids.make_ogrn(ogrn[:12]) == ogrn


def test_ogrn_with_wrong_digit_or_length_is_refused() -> None:
    assert not ids.is_valid_ogrn("1027700132196")
    assert not ids.is_valid_ogrn("102770013219")
    with pytest.raises(IdentifierError):
        ids.ogrn_check_digit("12345")


# --- systems -------------------------------------------------------------------------


def test_identifier_systems_are_distinct_absolute_uris() -> None:
    systems = [
        ids.SNILS_SYSTEM,
        ids.ENP_SYSTEM,
        ids.PASSPORT_SYSTEM,
        ids.OGRN_SYSTEM,
        ids.MO_REGISTRY_SYSTEM,
        ids.FRMR_SYSTEM,
    ]
    assert len(set(systems)) == len(systems)
    assert all(s.startswith(("urn:oid:", "https://")) for s in systems)
    assert ids.SNILS_SYSTEM == "urn:oid:1.2.643.100.3"
    assert ids.OGRN_SYSTEM == "urn:oid:1.2.643.100.1"


def test_identifier_error_is_a_value_error() -> None:
    assert issubclass(IdentifierError, ValueError)
