"""RELIABILITY.md's list of hardening items names tests that exist (and it is in the file)."""

from __future__ import annotations

import ast
from pathlib import Path

from reliability.report import HARDENING, hardening_section

ROOT = Path(__file__).resolve().parents[2]


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_every_hardening_item_names_an_existing_test() -> None:
    for item, named in HARDENING:
        for ref in named.split(", "):
            file, _, func = ref.partition("::")
            path = ROOT / file
            assert path.is_file(), f"{item}: {file} is missing"
            if func:
                assert func in _tests_in(path), f"{item}: {ref} is missing"


def test_reliability_md_carries_the_list() -> None:
    text = (ROOT / "RELIABILITY.md").read_text()
    for line in hardening_section():
        assert line in text
