"""What order 404н offers the patient this calendar year, and whether it is done.

The rule is :func:`medcard.prevention.eligibility` (age reached in the calendar year);
an examination counts as done when the card holds a check-up encounter dated this year.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from medcard.prevention import eligibility
from medcard.records.card import Card


@dataclass(frozen=True, slots=True)
class CheckupDue:
    year: int
    age: int  # reached this calendar year
    kind: str  # "dispanserization" or "prof-exam"
    rule: str  # the order's line
    done_on: str  # ISO date of this year's check-up, "" when not yet done

    @property
    def done(self) -> bool:
        return bool(self.done_on)


def checkup_due(card: Card) -> CheckupDue | None:
    """This year's preventive examination or dispanserization for an adult; None otherwise."""
    try:
        born = dt.date.fromisoformat(card.birth_date[:10])
    except ValueError:
        return None
    year = card.today.year
    due = eligibility(born, year)
    if not due.kind:
        return None
    done = [
        e.date[:10]
        for e in card.section("exams")
        if e.resource_type == "Encounter" and e.date[:4] == str(year)
    ]
    return CheckupDue(year, due.age, due.kind, due.rule, max(done) if done else "")
