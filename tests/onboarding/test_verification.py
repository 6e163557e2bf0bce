"""The identity check: per-field comparison with normalising, no oracle, attempts limited."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, select

from medcard.auth.accounts import Account
from medcard.db.tables import audit_log
from medcard.identifiers import make_snils
from medcard.onboarding.verification import (
    FieldResult,
    Identity,
    Outcome,
    normalise_name,
    verify,
)
from tests.onboarding.conftest import TYPED, make_card


def _identity(**changes: str) -> Identity:
    return Identity.from_dict({**TYPED, **changes})


def test_names_compare_without_case_yo_spaces_and_dash_spacing() -> None:
    assert normalise_name("  СЕМЁНОВА ") == normalise_name("семенова")
    assert normalise_name("Петрова -  Водкина") == normalise_name("петрова-водкина")
    assert normalise_name("Анна  Мария") == "анна мария"


def test_typed_documents_match_the_card_despite_formatting(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    result = verify(engine, make_account(), _identity(), limit=5)
    assert result.outcome is Outcome.MATCHED
    assert result.patient_id == card
    assert set(result.fields.values()) == {FieldResult.MATCH}
    assert result.attempts_left == 4


def test_iso_birth_date_from_the_date_input_matches(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    assert verify(engine, make_account(), _identity(birth_date="1984-03-12"), limit=5).matched


def test_one_differing_field_is_named(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    result = verify(engine, make_account(), _identity(family="Иванова"), limit=5)
    assert result.outcome is Outcome.PARTIAL
    assert result.differing == ["family"]
    assert result.may_file


def test_two_differing_fields_give_no_detail(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    result = verify(
        engine, make_account(), _identity(family="Иванова", birth_date="1990-01-01"), limit=5
    )
    assert result.outcome is Outcome.MISMATCH
    assert result.fields == {}
    assert not result.may_file


def test_card_without_passport_reports_it_missing(
    engine: Engine, make_account: Callable[..., Account]
) -> None:
    make_card(engine, passport=None)
    result = verify(engine, make_account(), _identity(), limit=5)
    assert result.outcome is Outcome.PARTIAL
    assert result.fields["passport"] is FieldResult.NOT_ON_CARD


def test_unknown_snils_finds_no_card(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    result = verify(engine, make_account(), _identity(snils=make_snils("223344556")), limit=5)
    assert result.outcome is Outcome.NO_CARD
    assert not result.may_file


def test_two_cards_with_one_snils_need_the_registry(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    make_card(engine)
    assert verify(engine, make_account(), _identity(), limit=5).outcome is Outcome.DUPLICATE


def test_malformed_input_is_refused_before_any_lookup_and_not_counted(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    bad_snils = TYPED["snils"][:-1] + str((int(TYPED["snils"][-1]) + 1) % 10)
    result = verify(
        engine,
        account,
        _identity(snils=bad_snils, passport="12", birth_date="31.02.1984", given=""),
        limit=5,
    )
    assert result.outcome is Outcome.INVALID
    assert result.errors == {
        "snils": "ob_err_snils",
        "passport": "ob_err_passport",
        "birth_date": "ob_err_birth_date",
        "given": "ob_err_required",
    }
    assert result.attempts_left == 5


def test_attempts_are_limited_per_account_and_audited_on_the_card(
    engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    account, other = make_account(), make_account()
    for left in (2, 1, 0):
        assert verify(engine, account, _identity(family="Х"), limit=3).attempts_left == left
    refused = verify(engine, account, _identity(), limit=3)
    assert refused.outcome is Outcome.LIMITED
    assert refused.patient_id == ""  # even the right data is not checked any more
    assert verify(engine, other, _identity(), limit=3).matched  # the limit is per account
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.outcome, audit_log.c.patient_id, audit_log.c.detail)
            .where(audit_log.c.actor == account.actor, audit_log.c.interaction == "identity-check")
            .order_by(audit_log.c.id)
        ).all()
    assert [r.outcome for r in rows] == ["8", "8", "8", "4"]
    assert {r.patient_id for r in rows[:3]} == {card}  # shows in the card's access log
    assert all("Х" not in r.detail for r in rows)  # entered values are not logged
