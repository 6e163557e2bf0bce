"""МКБ-10 is the Russian edition as НСИ publishes it: codes, names, OID and version."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medcard.demo import catalogs as cat
from medcard.demo.population import patient_bundles
from medcard.family_history import icd10 as family
from medcard.terminology import ICD10, UnknownCodeError
from medcard.terminology.nsi import (
    MKB10_OID,
    MKB10_SHIPPED_FILE,
    DictionaryFileError,
    load_mkb10,
    mkb10,
)

NSI_FILE = Path("/work/shared/data/nsi/1.2.643.5.1.13.13.11.1005_2.27.csv")
LATIN_ONLY = re.compile(r"^[^А-Яа-яЁё]*$")


def _codings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("system") == cat.ICD10_SYSTEM and "code" in node:
            yield node
        for value in node.values():
            yield from _codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _codings(value)


def _concepts(node: Any) -> Iterator[dict[str, Any]]:
    """CodeableConcepts whose first coding is МКБ-10."""
    if isinstance(node, dict):
        codings = node.get("coding")
        if isinstance(codings, list) and codings and codings[0].get("system") == cat.ICD10_SYSTEM:
            yield node
        for value in node.values():
            yield from _concepts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _concepts(value)


def test_shipped_dictionary_records_its_oid_version_and_source() -> None:
    meta = mkb10().version
    assert meta.oid == MKB10_OID == "1.2.643.5.1.13.13.11.1005"
    assert meta.version == "2.27"
    assert "ak4nv/mkb10" in meta.source
    assert MKB10_SHIPPED_FILE.name == f"{meta.oid}_{meta.version}.csv"


@pytest.mark.skipif(not NSI_FILE.exists(), reason="the shared НСИ copy is not on this machine")
def test_shipped_snapshot_is_the_published_file_unchanged() -> None:
    assert MKB10_SHIPPED_FILE.read_bytes() == NSI_FILE.read_bytes()


def test_every_row_of_the_file_is_read_with_its_actual_flag() -> None:
    lines = MKB10_SHIPPED_FILE.read_text(encoding="utf-8").splitlines()
    assert len(mkb10().entries) == len(lines) - 1
    withdrawn = [e for e in mkb10().entries.values() if not e.actual]
    assert withdrawn
    assert all(ICD10.catalog.get(e.code) is None for e in withdrawn)


def test_demo_records_carry_exactly_the_nsi_names_for_every_mkb10_code() -> None:
    seen: set[str] = set()
    for bundle in patient_bundles(25, seed=7):
        for coding in _codings(bundle):
            name = mkb10().name(coding["code"])
            assert name is not None, coding
            assert coding.get("display") == name, coding
            seen.add(coding["code"])
        for concept in _concepts(bundle):
            assert concept.get("text") == concept["coding"][0]["display"], concept
    assert len(seen) > 20


def test_demo_condition_catalogue_names_are_the_nsi_names() -> None:
    for spec in cat.CONDITIONS:
        assert spec.ru == mkb10().name(spec.code), spec.code


def test_family_history_list_shows_the_full_nsi_names() -> None:
    for code in family.COMMON:
        assert family.title(code) == mkb10().name(code), code
    assert family.title("E03") == "Другие формы гипотиреоза"
    assert family.title("M06") == "Другие ревматоидные артриты"
    assert family.title("J44") == "Другая хроническая обструктивная легочная болезнь"


def test_family_history_shows_nsi_name_even_for_a_withdrawn_code_in_an_old_entry() -> None:
    entry = next(
        e for e in mkb10().entries.values() if not e.actual and re.match(r"^[A-Z]\d\d", e.code)
    )
    assert family.title(entry.code) is None  # not offered for new entries
    assert family.shown_title(entry.code) == entry.name


def test_picker_offers_the_nsi_code_set_not_who_2019() -> None:
    # S72.00 (five characters) is in the Russian edition only; B18.00 is WHO's only.
    assert mkb10().get("S72.00") is not None
    assert ICD10.lookup("S72.00").display == mkb10().name("S72.00")
    assert ICD10.lookup("s7200").code == "S72.00"
    assert "S72.00" in [c.code for c in ICD10.search("S72.0")]
    assert mkb10().get("B18.00") is None
    assert all(c.code != "B18.00" for c in ICD10.search("B18.0"))
    with pytest.raises(UnknownCodeError):
        ICD10.lookup("B18.00")


def test_picker_and_family_lists_have_no_english_names() -> None:
    for code in ("R51", "M75.1", "L70.0"):
        assert not LATIN_ONLY.match(ICD10.lookup(code).display), code
        assert family.title(code) == mkb10().name(code)
    assert ICD10.lookup("R51").display == "Головная боль"
    # Latin-only names are those НСИ itself gives (G70.0 «Myasthenia gravis»), never WHO's.
    assert all(c.display == mkb10().name(c.code) for c in ICD10.catalog.concepts)


def test_a_newer_version_is_read_from_the_file_as_published(tmp_path: Path) -> None:
    newer = tmp_path / f"{MKB10_OID}_2.28.csv"
    shutil.copyfile(MKB10_SHIPPED_FILE, newer)
    with newer.open("a", encoding="utf-8") as f:
        f.write('\n99999;"X";"U99.9";"Проверочная рубрика";;;1;\n')
    loaded = load_mkb10(newer)
    assert loaded.version.version == "2.28"
    assert loaded.version.oid == MKB10_OID
    assert loaded.name("U99.9") == "Проверочная рубрика"
    assert mkb10().name("U99.9") is None


def test_a_file_of_another_dictionary_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "1.2.643.5.1.13.13.11.1070_2.5.csv"
    shutil.copyfile(MKB10_SHIPPED_FILE, other)
    with pytest.raises(DictionaryFileError):
        load_mkb10(other)
    broken = tmp_path / f"{MKB10_OID}_3.0.csv"
    broken.write_text("A;B\n1;2\n", encoding="utf-8")
    with pytest.raises(DictionaryFileError):
        load_mkb10(broken)
