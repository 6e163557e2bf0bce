"""Family history: what the patient records, what clinicians see and confirm.

Each relative is one FamilyMemberHistory (R4): ``relationship`` (v3 RoleCode),
``sex``, ``deceasedBoolean`` and, per illness, ``condition[]`` with the ICD-10 code,
``onsetAge`` in years (UCUM ``a``) and ``contributedToDeath`` for the cause of death.
The patient's entries are tagged "entered by patient" by the store.  A clinician who
confirms one writes a copy into the record as their own entry (status ``completed``)
pointing back to the patient's entry; the patient's original is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from medcard.access.policy import entered_by_patient
from medcard.family_history import icd10
from medcard.family_history.relatives import GENDER, RELATIVE, ROLE_CODE
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository

CONFIRMED_FROM: Final = "https://medcard.example/fhir/StructureDefinition/confirmed-from"
UCUM: Final = "http://unitsofmeasure.org"
MAX_CONDITIONS: Final = 5


class FamilyError(ValueError):
    """Refused input; ``key`` names the page text."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class IllnessInput:
    code: str
    onset_age: str = ""  # years, as typed
    caused_death: bool = False


@dataclass(frozen=True)
class RelativeInput:
    relationship: str
    name: str = ""
    deceased: bool = False
    death_age: str = ""
    illnesses: tuple[IllnessInput, ...] = ()
    note: str = ""


def _age(text: str, field: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or not 0 <= int(text) <= 120:
        raise FamilyError("family_bad_age", field=field)
    return int(text)


def _age_json(years: int) -> dict[str, Any]:
    return {"value": years, "unit": "лет", "system": UCUM, "code": "a"}


def build_resource(patient_id: str, entry: RelativeInput, today: date) -> dict[str, Any]:
    """The FamilyMemberHistory for one relative; FamilyError says what is wrong."""
    relative = RELATIVE.get(entry.relationship)
    if relative is None:
        raise FamilyError("family_bad_relationship")
    conditions = []
    for n, illness in enumerate(entry.illnesses, start=1):
        if not illness.code.strip():
            continue
        code = icd10.normalize(illness.code.split(" ", 1)[0])
        title = icd10.title(code, "ru")
        if title is None:
            raise FamilyError("family_bad_code", code=illness.code.strip()[:20], n=n)
        condition: dict[str, Any] = {
            "code": {
                "coding": [{"system": icd10.ICD10_SYSTEM, "code": code, "display": title}],
                "text": title,
            }
        }
        onset = _age(illness.onset_age, "onset")
        if onset is not None:
            condition["onsetAge"] = _age_json(onset)
        if illness.caused_death:
            if not entry.deceased:
                raise FamilyError("family_cause_but_living")
            condition["contributedToDeath"] = True
        conditions.append(condition)
    if len(conditions) > MAX_CONDITIONS:
        raise FamilyError("family_too_many")
    death_age = _age(entry.death_age, "death")
    if death_age is not None and not entry.deceased:
        raise FamilyError("family_cause_but_living")
    resource: dict[str, Any] = {
        "resourceType": "FamilyMemberHistory",
        "status": "completed" if conditions else "partial",
        "patient": {"reference": f"Patient/{patient_id}"},
        "date": today.isoformat(),
        "relationship": {
            "coding": [{"system": ROLE_CODE, "code": relative.code, "display": relative.en}],
            "text": relative.ru,
        },
        "sex": {"coding": [{"system": GENDER, "code": relative.sex}]},
    }
    if entry.name.strip():
        resource["name"] = entry.name.strip()[:200]
    if death_age is not None:
        resource["deceasedAge"] = _age_json(death_age)
    elif entry.deceased:
        resource["deceasedBoolean"] = True
    if conditions:
        resource["condition"] = conditions
    if entry.note.strip():
        resource["note"] = [{"text": entry.note.strip()[:2000]}]
    return resource


@dataclass(frozen=True)
class Illness:
    code: str
    title: str
    onset_age: int | None
    caused_death: bool


@dataclass(frozen=True)
class Entry:
    id: str
    relationship: str
    relationship_title: str
    name: str
    deceased: bool
    death_age: int | None
    illnesses: tuple[Illness, ...]
    by_patient: bool
    confirmed_from: str  # id of the patient's entry a clinician confirmed
    author: str
    note: str
    recorded: str


def _entry(resource: dict[str, Any], lang: str) -> Entry:
    coding = ((resource.get("relationship") or {}).get("coding") or [{}])[0]
    relative = RELATIVE.get(coding.get("code", ""))
    illnesses = []
    for cond in resource.get("condition") or []:
        c = ((cond.get("code") or {}).get("coding") or [{}])[0]
        code = c.get("code", "")
        onset = (cond.get("onsetAge") or {}).get("value")
        illnesses.append(
            Illness(
                code,
                icd10.shown_title(code, lang)
                or c.get("display", "")
                or cond["code"].get("text", ""),
                int(onset) if isinstance(onset, int | float) else None,
                bool(cond.get("contributedToDeath")),
            )
        )
    confirmed = ""
    for ext in resource.get("extension") or []:
        if ext.get("url") == CONFIRMED_FROM:
            confirmed = (ext.get("valueReference") or {}).get("reference", "").split("/")[-1]
    death_age = (resource.get("deceasedAge") or {}).get("value")
    return Entry(
        id=str(resource.get("id", "")),
        relationship=coding.get("code", ""),
        relationship_title=relative.title(lang) if relative else coding.get("display", ""),
        name=str(resource.get("name", "")),
        deceased=bool(resource.get("deceasedBoolean")) or "deceasedAge" in resource,
        death_age=int(death_age) if isinstance(death_age, int | float) else None,
        illnesses=tuple(illnesses),
        by_patient=entered_by_patient(resource),
        confirmed_from=confirmed,
        author=str(((resource.get("meta") or {}).get("source")) or ""),
        note=" ".join(n.get("text", "") for n in resource.get("note") or []),
        recorded=str(resource.get("date", "")),
    )


def list_entries(repo: Repository, patient_id: str, lang: str = "ru") -> list[Entry]:
    req = parse("FamilyMemberHistory", [("patient", patient_id), ("_count", "500")], max_count=500)
    entries = [
        _entry(s.json(), lang)
        for s in repo.search(req).matches
        if s.json().get("status") != "entered-in-error"
    ]
    order = {code: n for n, code in enumerate(RELATIVE)}
    return sorted(entries, key=lambda e: (order.get(e.relationship, 99), e.by_patient, e.id))


def add_entry(repo: Repository, patient_id: str, entry: RelativeInput, today: date) -> str:
    resource = build_resource(patient_id, entry, today)
    with repo.unit_of_work():
        return repo.create(resource).stored.id


def remove_entry(repo: Repository, entry_id: str) -> None:
    """The patient withdraws their own entry (the gate refuses anyone else's)."""
    with repo.unit_of_work():
        repo.delete("FamilyMemberHistory", entry_id)


def confirm_entry(repo: Repository, patient_id: str, entry_id: str, today: date) -> str:
    """A clinician takes a patient's entry into the record as their own."""
    original = repo.read("FamilyMemberHistory", entry_id).json()
    if not entered_by_patient(original):
        raise FamilyError("family_not_patient_entry")
    if (original.get("patient") or {}).get("reference") != f"Patient/{patient_id}":
        raise FamilyError("family_not_patient_entry")
    for existing in list_entries(repo, patient_id):
        if existing.confirmed_from == entry_id:
            return existing.id
    copy = {k: v for k, v in original.items() if k not in ("id", "meta", "extension", "identifier")}
    copy["status"] = "completed"
    copy["date"] = today.isoformat()
    copy["extension"] = [
        {"url": CONFIRMED_FROM, "valueReference": {"reference": f"FamilyMemberHistory/{entry_id}"}}
    ]
    with repo.unit_of_work():
        return repo.create(copy).stored.id
