"""Helpers for the billing tests: the lines of a card, read as the system."""

from __future__ import annotations

from sqlalchemy import Engine

from medcard.billing.generate import search_all
from medcard.billing.model import Line, read_line
from tests.corrections.conftest import system


def lines_of(engine: Engine, pid: str = "") -> list[Line]:
    repo = system(engine)
    params = [("patient", f"Patient/{pid}")] if pid else []
    return [read_line(m.json()) for m in search_all(repo, "ChargeItem", params)]


def hidden_line(engine: Engine, line_id: str) -> Line:
    repo = system(engine)
    repo.include_hidden = True
    return read_line(repo.read("ChargeItem", line_id).json())
