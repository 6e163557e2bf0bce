"""Who is due a preventive examination or dispanserization in a year, and health groups.

Adults: «Порядок проведения профилактического медицинского осмотра и диспансеризации
определенных групп взрослого населения», приказ Минздрава России от 27.04.2021 № 404н:

* the preventive examination (профилактический медицинский осмотр) is yearly from 18;
* п. 5 подп. 1 — dispanserization once in three years from 18 to 39 inclusive;
* п. 5 подп. 2 — dispanserization yearly from 40, and yearly for the categories of
  citizens that sub-item lists (disabled veterans and others), whatever their age.

The age is the one reached in the calendar year, not on the day of the examination: the
order's age periods are years of birth (a person born in 1986 is in the 39-year column all
through the year they turn 39), which is how regional health ministries publish them ("in
2025: born 2007, 2004, …, 1986", the list of a regional polyclinic). Someone examined in March before a November birthday is
therefore eligible by the age they reach in November.

Health groups: adults I, II, IIIа, IIIб (404н); minors I–V («Правила комплексной
оценки состояния здоровья несовершеннолетних», приложение 2 к порядку, утвержденному
приказом Минздрава России от 10.08.2017 № 514н).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

ORDER_404N: Final = "приказ Минздрава России от 27.04.2021 № 404н"
ORDER_514N: Final = "приказ Минздрава России от 10.08.2017 № 514н"

ADULT_FROM: Final = 18
YEARLY_FROM: Final = 40

HEALTH_GROUPS_ADULT: Final[dict[str, str]] = {
    "I": "I группа здоровья",
    "II": "II группа здоровья",
    "IIIa": "IIIа группа здоровья",
    "IIIb": "IIIб группа здоровья",
}
HEALTH_GROUPS_MINOR: Final[dict[str, str]] = {
    "I": "I группа здоровья",
    "II": "II группа здоровья",
    "III": "III группа здоровья (несовершеннолетние)",
    "IV": "IV группа здоровья (несовершеннолетние)",
    "V": "V группа здоровья (несовершеннолетние)",
}
#: Every code of the health-group code system, with its display.
HEALTH_GROUPS: Final[dict[str, str]] = HEALTH_GROUPS_ADULT | HEALTH_GROUPS_MINOR


def age_in_year(birth_date: dt.date, year: int) -> int:
    """The age a person reaches in ``year`` (on their birthday that year)."""
    return year - birth_date.year


@dataclass(frozen=True, slots=True)
class Eligibility:
    year: int
    age: int  # reached in that calendar year
    preventive_exam: bool
    dispanserization: bool
    rule: str  # the order's line that decides dispanserization ("" for minors)

    @property
    def kind(self) -> str:
        """The encounter kind a visit that year is: dispanserization, a check-up or none."""
        if self.dispanserization:
            return "dispanserization"
        return "prof-exam" if self.preventive_exam else ""


def eligibility(birth_date: dt.date, year: int, *, yearly_category: bool = False) -> Eligibility:
    """What 404н offers an adult in ``year``; ``yearly_category`` is п. 5 подп. 2's list."""
    age = age_in_year(birth_date, year)
    if age < ADULT_FROM:
        return Eligibility(year, age, False, False, "")
    if age >= YEARLY_FROM:
        return Eligibility(year, age, True, True, f"{ORDER_404N}, п. 5 подп. 2")
    if yearly_category:
        return Eligibility(year, age, True, True, f"{ORDER_404N}, п. 5 подп. 2 (категория)")
    every_third = (age - ADULT_FROM) % 3 == 0
    return Eligibility(year, age, True, every_third, f"{ORDER_404N}, п. 5 подп. 1")


def health_groups_for(age: int) -> dict[str, str]:
    """The health groups a doctor may assign at this age (on the day of the examination)."""
    return HEALTH_GROUPS_ADULT if age >= ADULT_FROM else HEALTH_GROUPS_MINOR
