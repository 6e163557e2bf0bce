"""What is wrong with a submitted form, field by field, as text keys the pages translate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str  # the form field to fix ("" for the form as a whole)
    key: str  # a text key in medcard.web.texts.workspace ("ws_err_...")
    params: dict[str, str] = dataclasses.field(default_factory=dict)


class FormError(Exception):
    """The form is refused as a whole: nothing was saved."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.key} {p.params}" for p in problems))
        self.problems = problems

    @classmethod
    def one(cls, field_name: str, key: str, **params: str) -> FormError:
        return cls([Problem(field_name, key, params)])

    def fields(self) -> set[str]:
        return {p.field for p in self.problems}


class Collector:
    """Gathers every problem of a form so the person fixes them in one go."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, field_name: str, key: str, **params: str) -> None:
        self.problems.append(Problem(field_name, key, params))

    def check(self) -> None:
        if self.problems:
            raise FormError(self.problems)
