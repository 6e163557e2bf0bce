"""МКБ-10, the Russian edition from НСИ: validation and type-ahead over the recordable codes.

The codes and names are those of the НСИ dictionary 1.2.643.5.1.13.13.11.1005 (see
:mod:`medcard.terminology.nsi`), not WHO's international list: the Russian edition has
codes WHO lacks (five-character injury codes such as ``S72.00``, four-character external
causes) and lacks some WHO added (``B18.00``).  Only codes that can be recorded are
offered: current three-character categories without subdivisions and the subcategories
(the most specific level), as Russian МКБ-10 practice requires.  Codes are typed in many
ways (``j069``, ``J06.9``); Cyrillic look-alikes ``А В Е К М Н О Р С Т Х`` for Latin
letters are common and are folded.
"""

from __future__ import annotations

from functools import cached_property
from typing import Final

from medcard.terminology.catalogs import Catalog, Concept
from medcard.terminology.nsi import Mkb10, mkb10

#: FHIR's URI for ICD-10; the edition and its version are the НСИ dictionary's (docs/oids.md).
SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10"
ICD10_SYSTEM: Final = SYSTEM
_LOOKALIKE = str.maketrans("АВЕКМНОРСТХ", "ABEKMHOPCTX")


class UnknownCodeError(ValueError):
    """The text is not a recordable ICD-10 code; ``hint`` says what to do instead."""

    def __init__(self, code: str, hint: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.hint = hint


def normalize(text: str) -> str:
    code = text.strip().split(" ", 1)[0].upper().replace(",", ".").translate(_LOOKALIKE)
    if len(code) > 3 and "." not in code:
        code = f"{code[:3]}.{code[3:]}"
    return code


def name(code: str) -> str | None:
    """The НСИ name of any МКБ-10 code (withdrawn ones too, for records written earlier)."""
    return mkb10().name(normalize(code))


class _Icd10:
    @property
    def dictionary(self) -> Mkb10:
        return mkb10()

    @cached_property
    def catalog(self) -> Catalog:
        version = self.dictionary.version.version
        concepts = [
            Concept(SYSTEM, e.code, e.name, extra={"leaf": "1" if e.leaf else "", "v": version})
            for e in self.dictionary.recordable()
        ]
        return Catalog("icd10", concepts)

    def lookup(self, text: str) -> Concept:
        """The recordable concept for ``text`` ("J06.9", "j069", "J06.9 Острая ...")."""
        code = normalize(text)
        if not code:
            raise UnknownCodeError(text)
        concept = self.catalog.get(code)
        if concept is None:
            raise UnknownCodeError(code)
        if not concept.extra.get("leaf"):
            children = self.catalog.search(code + ".", limit=3)
            hint = ", ".join(c.code for c in children)
            raise UnknownCodeError(code, hint)
        return concept

    def search(self, query: str, limit: int = 20) -> list[Concept]:
        q = query.strip()
        code = normalize(q)
        hits = (
            self.catalog.search(code, limit)
            if code and code[0].isalpha() and any(ch.isdigit() for ch in code)
            else []
        )
        if len(hits) < limit:
            seen = {c.code for c in hits}
            hits += [c for c in self.catalog.search(q, limit) if c.code not in seen]
        return hits[:limit]


ICD10 = _Icd10()
