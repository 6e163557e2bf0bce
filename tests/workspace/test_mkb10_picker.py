"""The workspace's МКБ-10 picker offers the НСИ codes and writes the НСИ names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from medcard.terminology.nsi import mkb10


def test_picker_finds_a_russian_edition_injury_code_and_not_who_b18_00(
    demo: None, signed_in: Callable[[str], TestClient]
) -> None:
    doc = signed_in("doctor")
    hits: list[dict[str, Any]] = doc.get("/workspace/lookup/icd10?q=S72.00").json()
    assert hits[0] == {"code": "S72.00", "display": mkb10().name("S72.00")}
    assert doc.get("/workspace/lookup/icd10?q=B18.00").json() == []
    by_name = doc.get("/workspace/lookup/icd10", params={"q": "головная боль"}).json()
    assert {"code": "R51", "display": "Головная боль"} in by_name
