"""Property tests of the parsers everything else trusts: search parameters, dates and
numbers in searches, and the Russian identifiers.  Whatever the input, they either
return a well-formed result or refuse it with their own error; nothing else escapes."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.fuzz import MODIFIERS, RESULT_PARAMS, TYPES, search_pairs

from medcard import identifiers
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.search.registry import params_for
from medcard.fhir.search.values import date_range, number_range

FAST = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(st.sampled_from(TYPES).flatmap(lambda t: st.tuples(st.just(t), search_pairs(t))))
def test_search_parsing_accepts_or_refuses_with_an_outcome(
    case: tuple[str, list[tuple[str, str]]],
) -> None:
    rtype, pairs = case
    try:
        req = parse(rtype, pairs)
    except FhirError as exc:
        status = exc.status
        assert 400 <= status < 500
        return
    assert 0 <= req.count <= 1000
    declared = params_for(rtype)
    for f in req.filters:
        assert f.name in declared or f.name in ("_id", "_lastUpdated")


@FAST
@given(
    st.sampled_from(TYPES),
    st.lists(
        st.tuples(
            st.builds(lambda n, m: n + m, st.sampled_from([*RESULT_PARAMS, "name", "date", "code", "subject", "value-quantity"]), st.sampled_from(MODIFIERS)),
            st.text(max_size=30),
        ),
        max_size=6,
    ),
)  # fmt: skip
def test_lenient_parsing_never_raises_for_unknown_names(
    rtype: str, pairs: list[tuple[str, str]]
) -> None:
    try:
        req = parse(rtype, pairs, lenient=True)
    except FhirError as exc:  # a known parameter with a malformed value is still refused
        status = exc.status
        assert status == 400
        return
    assert isinstance(req.warnings, list)


DATE_CHARS = string.digits + "-T:Z+.;/ "


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=DATE_CHARS, max_size=35),
        st.text(max_size=20),
        st.datetimes().map(lambda d: d.isoformat()),
    )
)
def test_date_ranges_are_ordered_or_refused(value: str) -> None:
    try:
        low, high = date_range(value)
    except ValueError:
        return
    assert low <= high


@settings(max_examples=600, deadline=None)
@given(
    st.dates(),
    st.sampled_from(
        ["", "T10:00", "T10:00:00", "T23:59:59.999999", "T00:00:00Z", "T12:00:00+03:00"]
    ),
)
def test_every_real_date_parses_and_contains_itself(day: object, suffix: str) -> None:
    low, high = date_range(f"{day}{suffix}")
    assert low <= high
    plain_low, plain_high = date_range(str(day))
    if not suffix or suffix.endswith("Z"):
        assert plain_low <= low <= high <= plain_high


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=string.digits + ".-+eE_xna", max_size=25),
        st.decimals(allow_nan=False, allow_infinity=False).map(str),
    )
)
def test_numbers_are_ranges_around_their_value_or_refused(value: str) -> None:
    try:
        v, low, high = number_range(value)
    except ValueError:
        return
    assert low <= v <= high


@pytest.mark.parametrize(
    "check",
    [identifiers.validate_snils, identifiers.validate_enp, identifiers.validate_passport,
     identifiers.normalize_snils, identifiers.is_valid_snils, identifiers.is_valid_ogrn,
     identifiers.enp_checksum_ok],
    ids=lambda f: f.__name__,
)  # fmt: skip
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.one_of(
        st.text(alphabet=string.digits + " -№\u00a0", max_size=20), st.text(max_size=20)
    )
)
def test_identifier_checks_accept_or_raise_identifier_error(check: object, value: str) -> None:
    with contextlib.suppress(identifiers.IdentifierError):
        check(value)  # type: ignore[operator]


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 10**9 - 1), st.sampled_from(["{}", "{}-{}-{} {}", "{} {} {} {}"]))
def test_generated_snils_always_validate_in_any_layout(n: int, layout: str) -> None:
    digits = identifiers.make_snils(f"{n:09d}")
    parts = (
        (digits[:3], digits[3:6], digits[6:9], digits[9:])
        if "-" in layout or " " in layout
        else (digits,)
    )
    written = layout.format(*parts) if len(parts) == 4 else digits
    assert identifiers.validate_snils(written) == identifiers.normalize_snils(digits)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 10**15 - 1))
def test_generated_enp_validate_and_a_changed_digit_does_not(n: int) -> None:
    enp = identifiers.make_enp(f"{n:015d}")
    assert identifiers.enp_checksum_ok(enp)
    broken = enp[:-1] + str((int(enp[-1]) + 1) % 10)
    assert not identifiers.enp_checksum_ok(broken)
