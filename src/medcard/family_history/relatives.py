"""Close blood relatives, coded in HL7 v3 RoleCode (FamilyMemberHistory.relationship)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ROLE_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
GENDER: Final = "http://hl7.org/fhir/administrative-gender"


@dataclass(frozen=True)
class Relative:
    code: str
    ru: str
    en: str
    sex: str  # administrative gender

    def title(self, lang: str) -> str:
        return self.en if lang == "en" else self.ru


RELATIVES: Final = (
    Relative("MTH", "Мать", "Mother", "female"),
    Relative("FTH", "Отец", "Father", "male"),
    Relative("SIS", "Сестра", "Sister", "female"),
    Relative("BRO", "Брат", "Brother", "male"),
    Relative("DAU", "Дочь", "Daughter", "female"),
    Relative("SON", "Сын", "Son", "male"),
    Relative("MGRMTH", "Бабушка по матери", "Maternal grandmother", "female"),
    Relative("MGRFTH", "Дедушка по матери", "Maternal grandfather", "male"),
    Relative("PGRMTH", "Бабушка по отцу", "Paternal grandmother", "female"),
    Relative("PGRFTH", "Дедушка по отцу", "Paternal grandfather", "male"),
)
RELATIVE: Final = {r.code: r for r in RELATIVES}
