"""The demo world: regions, organisations and their staff, plus every reference table.

The code tables (systems, specialties, lab tests, vaccines, medicines, documents,
diagnoses) moved to :mod:`medcard.terminology.reference`, which production code imports;
they are re-exported here so the generator and its tests keep reading ``cat.X``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from medcard.terminology.reference import *  # noqa: F403  (the tables, re-exported)

# --- regions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Region:
    """A constituent entity of the Russian Federation the demo covers."""

    code: str  # subject code (77, 78), also the first two digits of our ENPs
    name: str  # as written in the НСИ table of subjects
    city: str
    okato: str  # first two digits of a passport series issued there
    postal_low: int
    postal_high: int
    phone_code: str


REGIONS: Final = (
    Region("77", "г. Москва", "Москва", "45", 101000, 129999, "495"),
    Region("78", "г. Санкт-Петербург", "Санкт-Петербург", "40", 190000, 199999, "812"),
)
REGION_BY_CODE: Final = {r.code: r for r in REGIONS}


@dataclass(frozen=True, slots=True)
class OrgSpec:
    """One organisation of the reference data; ``key`` makes its stable id."""

    key: str
    kind: str
    name: str
    short: str
    street: str
    children: bool = False  # a children's polyclinic
    part_of: str | None = None  # key of the parent organisation
    staff: tuple[tuple[str, int], ...] = ()  # (specialty, how many doctors)


_ADULT_POLY_STAFF: Final = (
    ("therapist", 3),
    ("cardiologist", 1),
    ("endocrinologist", 1),
    ("neurologist", 1),
    ("ophthalmologist", 1),
    ("surgeon", 1),
)
_CHILD_POLY_STAFF: Final = (
    ("pediatrician", 3),
    ("neurologist", 1),
    ("ophthalmologist", 1),
    ("surgeon", 1),
)
_HOSPITAL_STAFF: Final = (
    ("therapist", 2),
    ("cardiologist", 1),
    ("neurologist", 1),
    ("surgeon", 1),
)

#: region code → organisations.  Names follow the real naming pattern; the
#: numbers are illustrative and the data is synthetic.
ORGANIZATIONS: Final[dict[str, tuple[OrgSpec, ...]]] = {
    "77": (
        OrgSpec(
            "doh",
            "ministry",
            "Департамент здравоохранения города Москвы",
            "ДЗМ",
            "Оружейный пер., д. 43",
        ),
        OrgSpec(
            "tfoms",
            "tfoms",
            "Московский городской фонд обязательного медицинского страхования",
            "МГФОМС",
            "ул. Достоевского, д. 31",
        ),
        OrgSpec(
            "smo-sogaz",
            "insurer",
            'АО "СОГАЗ-Мед", Московский филиал',
            "СОГАЗ-Мед",
            "ул. Новослободская, д. 14",
        ),
        OrgSpec(
            "smo-kapital",
            "insurer",
            'ООО "Капитал МС", филиал в г. Москве',
            "Капитал МС",
            "ул. Бахрушина, д. 18",
        ),
        OrgSpec(
            "rzn",
            "watchdog",
            "Территориальный орган Росздравнадзора по г. Москве и Московской области",
            "ТО Росздравнадзора",
            "Славянская пл., д. 4",
        ),
        OrgSpec(
            "prosecutor",
            "prosecutor",
            "Прокуратура города Москвы",
            "Прокуратура Москвы",
            "ул. Новокузнецкая, д. 27",
        ),
        OrgSpec(
            "gp12",
            "polyclinic",
            'ГБУЗ "Городская поликлиника № 12 ДЗМ"',
            "ГП № 12",
            "ул. Хлобыстова, д. 8",
            part_of="doh",
            staff=_ADULT_POLY_STAFF,
        ),
        OrgSpec(
            "gp62",
            "polyclinic",
            'ГБУЗ "Городская поликлиника № 62 ДЗМ"',
            "ГП № 62",
            "ул. Новоясеневский пр-т, д. 24",
            part_of="doh",
            staff=_ADULT_POLY_STAFF,
        ),
        OrgSpec(
            "dgp133",
            "polyclinic",
            'ГБУЗ "Детская городская поликлиника № 133 ДЗМ"',
            "ДГП № 133",
            "ул. Ивана Бабушкина, д. 9",
            children=True,
            part_of="doh",
            staff=_CHILD_POLY_STAFF,
        ),
        OrgSpec(
            "gkb52",
            "hospital",
            'ГБУЗ "Городская клиническая больница № 52 ДЗМ"',
            "ГКБ № 52",
            "ул. Пехотная, д. 3",
            part_of="doh",
            staff=_HOSPITAL_STAFF,
        ),
        OrgSpec(
            "ckdl",
            "lab",
            'ГБУЗ "Централизованная клинико-диагностическая лаборатория ДЗМ"',
            "ЦКДЛ",
            "ул. Фортунатовская, д. 1",
            part_of="doh",
            staff=(("lab-doctor", 2),),
        ),
        OrgSpec(
            "dc3",
            "imaging",
            'ГБУЗ "Диагностический центр № 3 ДЗМ"',
            "ДЦ № 3",
            "ул. Бакунинская, д. 7",
            part_of="doh",
            staff=(("radiologist", 2),),
        ),
    ),
    "78": (
        OrgSpec(
            "kzdrav",
            "ministry",
            "Комитет по здравоохранению Санкт-Петербурга",
            "Комздрав СПб",
            "Малая Садовая ул., д. 1",
        ),
        OrgSpec(
            "tfoms",
            "tfoms",
            "Территориальный фонд обязательного медицинского страхования Санкт-Петербурга",
            "ТФОМС СПб",
            "ул. Кирочная, д. 18",
        ),
        OrgSpec(
            "smo-sogaz",
            "insurer",
            'АО "СОГАЗ-Мед", Санкт-Петербургский филиал',
            "СОГАЗ-Мед",
            "Лиговский пр-т, д. 56",
        ),
        OrgSpec(
            "smo-kapital",
            "insurer",
            'ООО "Капитал МС", филиал в г. Санкт-Петербурге',
            "Капитал МС",
            "Невский пр-т, д. 95",
        ),
        OrgSpec(
            "rzn",
            "watchdog",
            "Территориальный орган Росздравнадзора по г. Санкт-Петербургу и Ленинградской области",
            "ТО Росздравнадзора",
            "ул. Моисеенко, д. 12",
        ),
        OrgSpec(
            "prosecutor",
            "prosecutor",
            "Прокуратура Санкт-Петербурга",
            "Прокуратура СПб",
            "ул. Почтамтская, д. 2/9",
        ),
        OrgSpec(
            "gp17",
            "polyclinic",
            'СПб ГБУЗ "Городская поликлиника № 17"',
            "ГП № 17",
            "пр-т Наставников, д. 40",
            part_of="kzdrav",
            staff=_ADULT_POLY_STAFF,
        ),
        OrgSpec(
            "gp38",
            "polyclinic",
            'СПб ГБУЗ "Городская поликлиника № 38"',
            "ГП № 38",
            "ул. Садовая, д. 30",
            part_of="kzdrav",
            staff=_ADULT_POLY_STAFF,
        ),
        OrgSpec(
            "dgp44",
            "polyclinic",
            'СПб ГБУЗ "Детская городская поликлиника № 44"',
            "ДГП № 44",
            "ул. Партизана Германа, д. 12",
            children=True,
            part_of="kzdrav",
            staff=_CHILD_POLY_STAFF,
        ),
        OrgSpec(
            "gb26",
            "hospital",
            'СПб ГБУЗ "Городская больница № 26"',
            "ГБ № 26",
            "ул. Костюшко, д. 2",
            part_of="kzdrav",
            staff=_HOSPITAL_STAFF,
        ),
        OrgSpec(
            "ckdl",
            "lab",
            'СПб ГБУЗ "Городская клинико-диагностическая лаборатория"',
            "ГКДЛ",
            "ул. Вавиловых, д. 14",
            part_of="kzdrav",
            staff=(("lab-doctor", 2),),
        ),
        OrgSpec(
            "kdc1",
            "imaging",
            'СПб ГБУЗ "Консультативно-диагностический центр № 1"',
            "КДЦ № 1",
            "ул. Сикейроса, д. 10",
            part_of="kzdrav",
            staff=(("radiologist", 2),),
        ),
    ),
}
