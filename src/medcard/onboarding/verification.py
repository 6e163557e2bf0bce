"""Checking the identity a person enters against the Patient record that carries the SNILS.

The person types SNILS, surname, first name, patronymic, date of birth and passport.
The card is found by SNILS (records merged away with ``Patient.link`` ``replaced-by``
do not count) and each field is compared after normalising what people and records
differ in without meaning anything: letter case, ё/е, repeated spaces, dashes in
double surnames, the separators of SNILS and passport numbers.

The explanation must not become an oracle for someone else's data:

* the record's values are never shown, only "matches" / "does not match";
* per-field results are given only when at most one field differs (a typo, a new
  surname): with two or more differences the answer is only "the details do not
  match the card", so a stranger holding a SNILS learns nothing field by field;
* an account may check at most ``Settings.access_checks_per_day`` times in 24 hours;
  every check is audited (``identity-check``, with the card's patient id, so the
  check appears in that patient's own access log), and the count comes from the
  audit log itself, so there is no second counter to drift.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, select

from medcard import clock
from medcard.audit.recorder import DENIED, FAILED, SUCCESS
from medcard.auth.accounts import Account
from medcard.db.tables import audit_log
from medcard.fhir.store.repository import Repository, Stored
from medcard.identifiers import (
    SNILS_SYSTEM,
    IdentifierError,
    is_passport,
    normalize_passport,
    validate_passport,
    validate_snils,
)
from medcard.onboarding.store import context_for, repository, search

INTERACTION = "identity-check"
WINDOW_SECONDS = 24 * 3600
FIELDS = ("snils", "family", "given", "middle", "birth_date", "passport")
REQUIRED = frozenset({"snils", "family", "given", "birth_date", "passport"})


class FieldResult(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_ON_CARD = "not_on_card"  # the card holds no such detail (e.g. no passport recorded)


class Outcome(StrEnum):
    MATCHED = "matched"  # every field matches: access can be granted at once
    PARTIAL = "partial"  # exactly one field differs: explained; a registrar may decide
    MISMATCH = "mismatch"  # two or more differ: no detail is given
    NO_CARD = "no_card"  # no card carries this SNILS
    DUPLICATE = "duplicate"  # several cards carry it: the registry must merge them first
    INVALID = "invalid"  # the input itself is malformed (not counted as an attempt)
    LIMITED = "limited"  # too many checks in 24 hours


@dataclass(frozen=True)
class Identity:
    """What the person typed, as typed (shown back in the form)."""

    snils: str = ""
    family: str = ""
    given: str = ""
    middle: str = ""
    birth_date: str = ""
    passport: str = ""

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity:
        return cls(**{name: str(data.get(name) or "")[:200] for name in FIELDS})


@dataclass(frozen=True)
class Verification:
    outcome: Outcome
    patient_id: str = ""
    fields: dict[str, FieldResult] = field(default_factory=dict)  # empty unless explained
    errors: dict[str, str] = field(default_factory=dict)  # field → message key (INVALID)
    attempts_left: int = 0

    @property
    def matched(self) -> bool:
        return self.outcome is Outcome.MATCHED

    @property
    def may_file(self) -> bool:
        """A request may be filed: at once granted (matched) or for a registrar (partial)."""
        return self.outcome in (Outcome.MATCHED, Outcome.PARTIAL)

    @property
    def differing(self) -> list[str]:
        return [name for name, r in self.fields.items() if r is not FieldResult.MATCH]


# -- normalising ----------------------------------------------------------------------

_DASHES = re.compile(r"\s*[\-‐‑‒–—]\s*")
_SPACES = re.compile(r"\s+")


def normalise_name(value: str) -> str:
    """Case, ё/е, spaces and dashes do not distinguish names («Петрова-Водкина» ==
    «петрова - водкина», «Алёна» == «Алена»)."""
    text = unicodedata.normalize("NFKC", value).casefold().replace("ё", "е")
    text = _DASHES.sub("-", text.strip())
    return _SPACES.sub(" ", text)


def parse_birth_date(value: str) -> dt.date | None:
    """ISO (the date input) or the Russian ``ДД.ММ.ГГГГ``."""
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    return None


def _input_errors(identity: Identity) -> tuple[dict[str, str], dict[str, str]]:
    """(normalised values, errors): malformed input is refused before any lookup."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in FIELDS:
        raw = getattr(identity, name).strip()
        if not raw:
            if name in REQUIRED:
                errors[name] = "ob_err_required"
            values[name] = ""
            continue
        if name == "snils":
            try:
                values[name] = validate_snils(raw)
            except IdentifierError:
                errors[name] = "ob_err_snils"
        elif name == "passport":
            try:
                values[name] = validate_passport(raw)
            except IdentifierError:
                errors[name] = "ob_err_passport"
        elif name == "birth_date":
            born = parse_birth_date(raw)
            if born is None or born > clock.now().date() or born.year < 1900:
                errors[name] = "ob_err_birth_date"
            else:
                values[name] = born.isoformat()
        else:
            if len(raw) > 100:
                errors[name] = "ob_err_name"
            values[name] = normalise_name(raw)
    return values, errors


# -- comparing --------------------------------------------------------------------------


def _names(patient: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(family, first name, patronymic) of each name; Ru Core puts the patronymic in given[1]."""
    out = []
    for name in patient.get("name") or []:
        given = name.get("given") or []
        out.append(
            (
                normalise_name(str(name.get("family") or "")),
                normalise_name(str(given[0]) if given else ""),
                normalise_name(" ".join(str(g) for g in given[1:])),
            )
        )
    return out or [("", "", "")]


def record_passports(patient: dict[str, Any]) -> set[str]:
    found = set()
    for ident in patient.get("identifier") or []:
        if is_passport(ident) and ident.get("value"):
            try:
                found.add(normalize_passport(str(ident["value"])))
            except IdentifierError:
                continue
    return found


def compare(values: dict[str, str], patient: dict[str, Any]) -> dict[str, FieldResult]:
    """Per field, the entered (normalised) value against the record."""

    def same(ok: bool) -> FieldResult:
        return FieldResult.MATCH if ok else FieldResult.MISMATCH

    # The name the person most probably means: the record's name matching most fields.
    best = max(
        _names(patient),
        key=lambda n: (
            (n[0] == values["family"]) + (n[1] == values["given"]) + (n[2] == values["middle"])
        ),
    )
    passports = record_passports(patient)
    return {
        "snils": FieldResult.MATCH,  # the card was found by it
        "family": same(best[0] == values["family"]),
        "given": same(best[1] == values["given"]),
        "middle": same(best[2] == values["middle"]),
        "birth_date": same(str(patient.get("birthDate") or "") == values["birth_date"]),
        "passport": (
            same(values["passport"] in passports) if passports else FieldResult.NOT_ON_CARD
        ),
    }


def find_cards(repo: Repository, snils: str) -> list[Stored]:
    """The Patients carrying the SNILS, without records merged into another one."""
    found = search(repo, "Patient", ("identifier", f"{SNILS_SYSTEM}|{snils}"), count=10)
    return [
        p
        for p in found
        if not any(link.get("type") == "replaced-by" for link in p.json().get("link") or [])
    ]


def attempts_used(engine: Engine, account: Account) -> int:
    """Checks this account made in the last 24 hours (from the audit log)."""
    since = clock.now_micros() - WINDOW_SECONDS * 1_000_000
    with engine.connect() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(audit_log)
            .where(
                audit_log.c.actor == account.actor,
                audit_log.c.interaction == INTERACTION,
                audit_log.c.recorded >= since,
                audit_log.c.outcome != DENIED,
            )
        ).scalar_one()
    return int(count)


def verify(engine: Engine, account: Account, identity: Identity, *, limit: int) -> Verification:
    """Compare the entered identity with the card found by its SNILS (one audited attempt)."""
    values, errors = _input_errors(identity)
    used = attempts_used(engine, account)
    left = max(0, limit - used)
    if errors:
        return Verification(Outcome.INVALID, errors=errors, attempts_left=left)
    with repository(engine, context_for(account)) as repo:
        if left <= 0:
            repo.audit.add(INTERACTION, outcome=DENIED, detail=f"refused: {limit} checks in 24 h")
            return Verification(Outcome.LIMITED, attempts_left=0)
        left -= 1
        cards = find_cards(repo, values["snils"])
        if not cards:
            repo.audit.add(INTERACTION, outcome=FAILED, detail="no card carries the SNILS")
            return Verification(Outcome.NO_CARD, attempts_left=left)
        if len(cards) > 1:
            ids = ", ".join(f"Patient/{c.id}" for c in cards)
            repo.audit.add(INTERACTION, outcome=FAILED, detail=f"several cards: {ids}")
            return Verification(Outcome.DUPLICATE, attempts_left=left)
        card = cards[0]
        fields = compare(values, card.json())
        differing = [name for name, r in fields.items() if r is not FieldResult.MATCH]
        if not differing:
            outcome, explained = Outcome.MATCHED, fields
        elif len(differing) == 1:
            outcome, explained = Outcome.PARTIAL, fields
        else:
            outcome, explained = Outcome.MISMATCH, {}
        detail = "all fields match" if not differing else "differ: " + ", ".join(differing)
        repo.audit.add(
            INTERACTION,
            "Patient",
            card.id,
            card.id,
            outcome=SUCCESS if not differing else FAILED,
            detail=detail,
        )
        return Verification(outcome, card.id, explained, attempts_left=left)
