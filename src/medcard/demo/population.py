"""Deterministic synthetic population as FHIR R4 transaction bundles.

Demos, tests and benchmarks need thousands of realistic cards that are valid
by construction and identical on every run, so everything here is driven by
``random.Random`` seeded from ``(seed, patient index)``: patient *i* is the same
whether it is generated alone, first or ten-thousandth, which lets benchmarks
generate in chunks or in parallel.  Faker (``ru_RU``) is called only once per
seed to fill name and street pools; the hot path is plain dict building.

Two entry points:

* :func:`reference_bundle` — organisations (with the region they belong to),
  practitioners, their roles and locations, plus our CodeSystems, as ``PUT``
  entries with stable ids so loading it twice changes nothing;
* :func:`patient_bundles` — one ``transaction`` per patient with ``POST``
  entries and ``urn:uuid:`` full URLs; clinical resources point at the
  patient's uuid and at ``Practitioner/<id>`` / ``Organization/<id>`` /
  ``Location/<id>`` from the reference bundle.  The reference ids do not depend
  on the seed, only the people's names and numbers do.

Dates are relative to a fixed ``today`` (default 2026-11-01) and never after
it, except the ends of validity periods (``MedicationRequest.dispenseRequest.
validityPeriod.end`` and a certificate's ``DocumentReference.context.period.
end``), which may lie ahead — that is what makes a prescription ``active``.
The team chose ``context.period`` for a certificate's validity; note that R4
defines it as the period of the service documented.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import math
import random
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from medcard import identifiers as ids
from medcard.demo import catalogs as cat
from medcard.prevention import eligibility
from medcard.terminology.icd10 import name as icd10_name

__all__ = [
    "DEFAULT_TODAY",
    "patient_bundle",
    "patient_bundle_with_resources",
    "patient_bundles",
    "reference_bundle",
]

Resource = dict[str, Any]
_At = Callable[[int, tuple[Any, ...]], None]

DEFAULT_TODAY: Final = dt.date(2026, 11, 1)
TZ: Final = "+03:00"  # Moscow time; both demo regions use it

# Records before this date are treated as not digitised (city-wide electronic
# records started about then), which keeps old adults' childhood vaccinations
# out of the card the way they are missing from real ones.
_DIGITISED_FROM: Final = dt.date(2011, 1, 1).toordinal()

_AGE_BANDS: Final = ((0, 17, 0.20), (18, 44, 0.38), (45, 64, 0.26), (65, 92, 0.16))

_INFECTIOUS_PREFIXES: Final = ("J0", "J1", "J2", "U07", "A09", "B34", "H66", "N30")


# --- reference data structure (independent of the seed) ----------------------


@dataclass(frozen=True, slots=True)
class _Staff:
    practitioner_id: str
    role_id: str
    org_id: str
    specialty: str


@dataclass(frozen=True, slots=True)
class _Org:
    id: str
    spec: cat.OrgSpec
    region: cat.Region
    location_id: str | None
    staff: tuple[_Staff, ...]

    def doctors(self, specialty: str) -> tuple[_Staff, ...]:
        return tuple(s for s in self.staff if s.specialty == specialty)


@dataclass(frozen=True, slots=True)
class _RegionOrgs:
    region: cat.Region
    adult_polyclinics: tuple[_Org, ...]
    child_polyclinic: _Org
    hospital: _Org
    lab: _Org
    imaging: _Org
    insurers: tuple[_Org, ...]


@lru_cache(maxsize=1)
def _structure() -> tuple[tuple[_Org, ...], dict[str, _RegionOrgs]]:
    """Organisations, staff slots and ids: static, so every seed shares them."""
    orgs: list[_Org] = []
    regions: dict[str, _RegionOrgs] = {}
    for region in cat.REGIONS:
        mine: list[_Org] = []
        for spec in cat.ORGANIZATIONS[region.code]:
            org_id = f"org-{region.code}-{spec.key}"
            staff = tuple(
                _Staff(
                    practitioner_id=f"prac-{region.code}-{spec.key}-{specialty}-{n}",
                    role_id=f"role-{region.code}-{spec.key}-{specialty}-{n}",
                    org_id=org_id,
                    specialty=specialty,
                )
                for specialty, count in spec.staff
                for n in range(1, count + 1)
            )
            location = f"loc-{region.code}-{spec.key}" if spec.kind in cat.MEDICAL_KINDS else None
            mine.append(_Org(org_id, spec, region, location, staff))
        orgs.extend(mine)

        def one(kind: str, group: list[_Org] = mine) -> _Org:
            return next(o for o in group if o.spec.kind == kind)

        regions[region.code] = _RegionOrgs(
            region=region,
            adult_polyclinics=tuple(
                o for o in mine if o.spec.kind == "polyclinic" and not o.spec.children
            ),
            child_polyclinic=next(o for o in mine if o.spec.children),
            hospital=one("hospital"),
            lab=one("lab"),
            imaging=one("imaging"),
            insurers=tuple(o for o in mine if o.spec.kind == "insurer"),
        )
    return tuple(orgs), regions


# --- seeded parts: names, people ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pools:
    male_first: tuple[str, ...]
    male_middle: tuple[str, ...]
    male_last: tuple[str, ...]
    female_first: tuple[str, ...]
    female_middle: tuple[str, ...]
    female_last: tuple[str, ...]
    streets: tuple[str, ...]


@lru_cache(maxsize=4)
def _pools(seed: int) -> _Pools:
    """Name and street pools from one seeded Faker: Faker is slow per call, pools are not."""
    from faker import Faker  # imported here: Faker is slow to import and only pools need it

    fake = Faker("ru_RU")
    fake.seed_instance(seed)

    def pool(draw: Any, n: int) -> tuple[str, ...]:
        return tuple(sorted({str(draw()) for _ in range(n)}))

    return _Pools(
        male_first=pool(fake.first_name_male, 400),
        male_middle=pool(fake.middle_name_male, 400),
        male_last=pool(fake.last_name_male, 800),
        female_first=pool(fake.first_name_female, 400),
        female_middle=pool(fake.middle_name_female, 400),
        female_last=pool(fake.last_name_female, 800),
        streets=pool(fake.street_name, 600),
    )


@dataclass(frozen=True, slots=True)
class _Person:
    family: str
    given: str
    middle: str
    gender: str

    @property
    def full(self) -> str:
        return f"{self.family} {self.given} {self.middle}"

    @property
    def short(self) -> str:
        return f"{self.family} {self.given[0]}. {self.middle[0]}."


def _draw_person(rng: random.Random, pools: _Pools, gender: str) -> _Person:
    if gender == "male":
        return _Person(
            rng.choice(pools.male_last),
            rng.choice(pools.male_first),
            rng.choice(pools.male_middle),
            gender,
        )
    return _Person(
        rng.choice(pools.female_last),
        rng.choice(pools.female_first),
        rng.choice(pools.female_middle),
        gender,
    )


def _digits(rng: random.Random, n: int) -> str:
    return f"{rng.randrange(10**n):0{n}d}"


def _new_snils(rng: random.Random) -> str:
    # Above 001-001-998 so that the control number is really exercised.
    return ids.make_snils(f"{rng.randrange(1_002_000, 999_999_999):09d}")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class _Directory:
    orgs: dict[str, _Org]
    regions: dict[str, _RegionOrgs]
    people: dict[str, _Person]
    snils: dict[str, str]
    frmr: dict[str, str]


@lru_cache(maxsize=4)
def _directory(seed: int) -> _Directory:
    orgs, regions = _structure()
    pools = _pools(seed)
    rng = random.Random(f"medcard-demo-reference:{seed}")  # noqa: S311  (reproducible, not secret)
    people: dict[str, _Person] = {}
    snils: dict[str, str] = {}
    frmr: dict[str, str] = {}
    for org in orgs:
        for staff in org.staff:
            gender = "female" if rng.random() < 0.7 else "male"  # most doctors are women
            people[staff.practitioner_id] = _draw_person(rng, pools, gender)
            snils[staff.practitioner_id] = _new_snils(rng)
            frmr[staff.practitioner_id] = _uuid(rng)
    return _Directory({o.id: o for o in orgs}, regions, people, snils, frmr)


# --- small FHIR builders -----------------------------------------------------------


def _date(ordinal: int) -> str:
    return dt.date.fromordinal(ordinal).isoformat()


def _dt(ordinal: int, minute: int) -> str:
    return f"{dt.date.fromordinal(ordinal).isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00{TZ}"


def _ru_date(ordinal: int) -> str:
    return dt.date.fromordinal(ordinal).strftime("%d.%m.%Y")


def _coding(system: str, code: str, display: str) -> Resource:
    return {"system": system, "code": code, "display": display}


def _cc(system: str, code: str, display: str, text: str | None = None) -> Resource:
    concept: Resource = {"coding": [{"system": system, "code": code, "display": display}]}
    if text is not None:
        concept["text"] = text
    return concept


def _ref(reference: str, display: str | None = None) -> Resource:
    if display is None:
        return {"reference": reference}
    return {"reference": reference, "display": display}


def _qty(value: float, unit: str, code: str) -> Resource:
    return {"value": value, "unit": unit, "system": cat.UCUM_SYSTEM, "code": code}


def _region_extension(region: cat.Region) -> list[Resource]:
    return [
        {
            "url": cat.REGION_EXTENSION_URL,
            "valueCoding": _coding(cat.REGION_SYSTEM, region.code, region.name),
        }
    ]


@lru_cache(maxsize=256)
def _icd_display(code: str) -> str:
    """The НСИ МКБ-10 name: demo records show what a real card would."""
    name = icd10_name(code)
    if name is None:
        raise KeyError(f"{code} is not in the НСИ МКБ-10")
    return name


def _icd(code: str) -> Resource:
    display = _icd_display(code)
    return _cc(cat.ICD10_SYSTEM, code, display, display)


def _lab_category() -> list[Resource]:
    return [
        {
            "coding": [
                _coding(cat.V2_0074, "LAB", "Laboratory"),
                _coding(cat.OBSERVATION_CATEGORY, "laboratory", "Laboratory"),
            ],
            "text": "Лабораторные исследования",
        }
    ]


def _imaging_category() -> list[Resource]:
    return [
        {
            "coding": [
                _coding(cat.V2_0074, "RAD", "Radiology"),
                _coding(cat.OBSERVATION_CATEGORY, "imaging", "Imaging"),
            ],
            "text": "Лучевая и инструментальная диагностика",
        }
    ]


def _obs_category(code: str, display: str) -> list[Resource]:
    return [_cc(cat.OBSERVATION_CATEGORY, code, display)]


def _poisson(rng: random.Random, lam: float) -> int:
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _org_ogrn(org_id: str, region: cat.Region) -> str:
    crc = zlib.crc32(org_id.encode())
    return ids.make_ogrn(f"1{2 + crc % 20:02d}{region.code}{crc % 10**7:07d}")


def _org_frmo_oid(org_id: str, region: cat.Region) -> str:
    return f"1.2.643.5.1.13.13.12.2.{region.code}.{1000 + zlib.crc32(org_id.encode()) % 9000}"


# --- reference bundle ----------------------------------------------------------------


def _put(resource: Resource) -> Resource:
    return {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def _code_system(cs_id: str, url: str, title: str, concepts: dict[str, str]) -> Resource:
    return {
        "resourceType": "CodeSystem",
        "id": cs_id,
        "url": url,
        "version": "1",
        "name": "".join(part.capitalize() for part in cs_id.split("-")),
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "medcard",
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": [{"code": code, "display": display} for code, display in concepts.items()],
    }


def _code_systems() -> list[Resource]:
    return [
        _code_system(
            "medcard-organization-kind",
            cat.ORG_KIND_SYSTEM,
            "Виды организаций medcard",
            {kind: names[0] for kind, names in cat.ORG_KINDS.items()},
        ),
        _code_system(
            "medcard-region",
            cat.REGION_SYSTEM,
            "Субъекты Российской Федерации (демо)",
            {r.code: r.name for r in cat.REGIONS},
        ),
        _code_system(
            "medcard-specialty",
            cat.SPECIALTY_SYSTEM,
            "Специальности врачей",
            {s.code: s.name for s in cat.SPECIALTIES.values()},
        ),
        _code_system(
            "medcard-encounter-kind",
            cat.ENCOUNTER_KIND_SYSTEM,
            "Виды обращений",
            dict(cat.ENCOUNTER_KINDS),
        ),
        _code_system(
            "medcard-document-kind",
            cat.DOCUMENT_KIND_SYSTEM,
            "Виды справок и медицинских документов",
            {d.code: d.ru for d in cat.DOCUMENTS.values()},
        ),
        _code_system(
            "medcard-document-category",
            cat.DOCUMENT_CATEGORY_SYSTEM,
            "Категории медицинских документов",
            dict(cat.DOCUMENT_CATEGORIES),
        ),
        _code_system(
            "medcard-health-group",
            cat.HEALTH_GROUP_SYSTEM,
            "Группы здоровья",
            dict(cat.HEALTH_GROUPS),
        ),
        _code_system(
            "medcard-observation-kind",
            cat.OBSERVATION_KIND_SYSTEM,
            "Показатели и панели medcard",
            dict(cat.OBSERVATION_KINDS),
        ),
        _code_system(
            "medcard-vaccine",
            cat.VACCINE_SYSTEM,
            "Вакцины национального календаря профилактических прививок",
            {v.key: v.ru for v in cat.VACCINES.values()},
        ),
    ]


def _organization(org: _Org, orgs: dict[str, _Org]) -> Resource:
    spec, region = org.spec, org.region
    kind_ru, hl7_code, hl7_display = cat.ORG_KINDS[spec.kind]
    identifiers: list[Resource] = [
        {"use": "official", "system": ids.OGRN_SYSTEM, "value": _org_ogrn(org.id, region)}
    ]
    if spec.kind in cat.MEDICAL_KINDS:
        identifiers.append(
            {"system": ids.MO_REGISTRY_SYSTEM, "value": _org_frmo_oid(org.id, region)}
        )
    crc = zlib.crc32(org.id.encode())
    resource: Resource = {
        "resourceType": "Organization",
        "id": org.id,
        "extension": _region_extension(region),
        "identifier": identifiers,
        "active": True,
        "type": [
            _cc(cat.ORGANIZATION_TYPE, hl7_code, hl7_display),
            _cc(cat.ORG_KIND_SYSTEM, spec.kind, kind_ru, kind_ru),
        ],
        "name": spec.name,
        "alias": [spec.short],
        "telecom": [
            {
                "system": "phone",
                "value": f"+7 ({region.phone_code}) {crc % 900 + 100}-{crc % 90 + 10}-"
                f"{crc // 7 % 90 + 10}",
                "use": "work",
            }
        ],
        "address": [_org_address(spec, region)],
    }
    if spec.part_of is not None:
        parent = orgs[f"org-{region.code}-{spec.part_of}"]
        resource["partOf"] = _ref(f"Organization/{parent.id}", parent.spec.name)
    return resource


def _org_address(spec: cat.OrgSpec, region: cat.Region) -> Resource:
    crc = zlib.crc32(spec.name.encode())
    postal = f"{region.postal_low + crc % (region.postal_high - region.postal_low):06d}"
    return {
        "use": "work",
        "type": "physical",
        "text": f"{postal}, {region.name}, {spec.street}",
        "line": [spec.street],
        "city": region.city,
        "state": region.name,
        "postalCode": postal,
        "country": "RU",
    }


def _location(org: _Org) -> Resource:
    assert org.location_id is not None
    return {
        "resourceType": "Location",
        "id": org.location_id,
        "status": "active",
        "name": f"{org.spec.short}, основное здание",
        "mode": "instance",
        "physicalType": _cc(cat.LOCATION_PHYSICAL_TYPE, "bu", "Building"),
        "address": _org_address(org.spec, org.region),
        "managingOrganization": _ref(f"Organization/{org.id}", org.spec.name),
    }


def _position(specialty: cat.Specialty, org: _Org) -> str:
    """The post: district ("участковый") doctors exist only in polyclinics."""
    if org.spec.kind == "polyclinic":
        return specialty.position
    return specialty.position.replace(" участковый", "")


def _human_name(person: _Person) -> list[Resource]:
    # Ru Core convention: given[0] is the first name, given[1] the patronymic.
    return [
        {
            "use": "official",
            "text": person.full,
            "family": person.family,
            "given": [person.given, person.middle],
        }
    ]


def _practitioner(staff: _Staff, directory: _Directory) -> Resource:
    person = directory.people[staff.practitioner_id]
    specialty = cat.SPECIALTIES[staff.specialty]
    return {
        "resourceType": "Practitioner",
        "id": staff.practitioner_id,
        "identifier": [
            {
                "use": "official",
                "type": _cc(cat.V2_0203, "SB", "Social Beneficiary Identifier", "СНИЛС"),
                "system": ids.SNILS_SYSTEM,
                "value": directory.snils[staff.practitioner_id],
            },
            {
                "type": _cc(cat.V2_0203, "PRN", "Provider number", "ФРМР"),
                "system": ids.FRMR_SYSTEM,
                "value": directory.frmr[staff.practitioner_id],
            },
        ],
        "active": True,
        "name": _human_name(person),
        "gender": person.gender,
        "qualification": [
            {"code": _cc(cat.SPECIALTY_SYSTEM, specialty.code, specialty.name, specialty.name)}
        ],
    }


def _practitioner_role(staff: _Staff, org: _Org, directory: _Directory) -> Resource:
    specialty = cat.SPECIALTIES[staff.specialty]
    role: Resource = {
        "resourceType": "PractitionerRole",
        "id": staff.role_id,
        "active": True,
        "practitioner": _ref(
            f"Practitioner/{staff.practitioner_id}",
            directory.people[staff.practitioner_id].short,
        ),
        "organization": _ref(f"Organization/{org.id}", org.spec.name),
        "code": [_cc(cat.PRACTITIONER_ROLE, "doctor", "Doctor", _position(specialty, org))],
        "specialty": [
            _cc(cat.SPECIALTY_SYSTEM, specialty.code, specialty.name, _position(specialty, org))
        ],
    }
    if org.location_id is not None:
        role["location"] = [_ref(f"Location/{org.location_id}")]
    return role


def reference_bundle(seed: int = 1) -> Resource:
    """Reference data as one ``transaction`` of ``PUT`` entries with stable ids.

    Two regions (Москва 77, Санкт-Петербург 78), each with polyclinics (two for
    adults, one for children), a hospital, a laboratory, an imaging centre and
    the authorities a patient deals with (health department, territorial OMS
    fund, two insurers, Roszdravnadzor's office, the prosecutor's office).
    Every Organization carries its kind (``ORG_KIND_SYSTEM``) and region
    (``REGION_EXTENSION_URL`` and its address); medical ones are ``partOf``
    the regional health authority.  Ids are the same for every seed; names,
    SNILS and FRMR ids of practitioners follow the seed.
    """
    directory = _directory(seed)
    entries: list[Resource] = [_put(cs) for cs in _code_systems()]
    orgs = directory.orgs
    for org in orgs.values():
        entries.append(_put(_organization(org, orgs)))
    for org in orgs.values():
        if org.location_id is not None:
            entries.append(_put(_location(org)))
    for org in orgs.values():
        for staff in org.staff:
            entries.append(_put(_practitioner(staff, directory)))
            entries.append(_put(_practitioner_role(staff, org, directory)))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# --- patients --------------------------------------------------------------------------


@dataclass(slots=True)
class _Chronic:
    spec: cat.ConditionSpec
    ref: str
    onset: int  # ordinal


class _PatientBuilder:
    """Builds one patient's card; each episode is appended atomically.

    Episodes only point at the patient, the chronic conditions and allergies
    made up front (the "core") and at reference data, so a prefix or suffix
    of episodes is always a self-consistent card — which is how
    :func:`patient_bundle_with_resources` reaches a target size.
    """

    def __init__(
        self,
        rng: random.Random,
        directory: _Directory,
        pools: _Pools,
        today: dt.date,
        years: int,
        *,
        min_age: int | None = None,
        max_age: int | None = None,
        chronic_boost: int = 0,
        follow_up_rate: float = 1.0,
    ) -> None:
        self.rng = rng
        self.dir = directory
        self.pools = pools
        self.today = today.toordinal()
        self.last = self.today - 1  # nothing happens today or later
        self.years = years
        self.follow_up_rate = follow_up_rate
        self.entries: list[Resource] = []
        self._min_age = min_age
        self._max_age = max_age
        self._chronic_boost = chronic_boost
        self.chronic: list[_Chronic] = []
        self.clock = 9 * 60  # start minute of the latest encounter

    # -- plumbing

    def add(self, resource: Resource) -> str:
        url = f"urn:uuid:{_uuid(self.rng)}"
        self.entries.append(
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
        return url

    def after_visit(self) -> int:
        """A time shortly after the last visit began: orders are written during it."""
        return min(self.clock + 15, 23 * 60)

    def minute(self, lo: int = 8 * 60, hi: int = 19 * 60) -> int:
        return self.rng.randrange(lo // 15, hi // 15) * 15

    def age_on(self, ordinal: int) -> int:
        born = dt.date.fromordinal(self.birth)
        on = dt.date.fromordinal(ordinal)
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))

    def doc_number(self, prefix: str) -> str:
        return f"{prefix}-{self.region.code}-{self.rng.randrange(10**7):07d}"

    def prac(self, staff: _Staff) -> Resource:
        return _ref(
            f"Practitioner/{staff.practitioner_id}",
            self.dir.people[staff.practitioner_id].short,
        )

    @staticmethod
    def org(org: _Org) -> Resource:
        return _ref(f"Organization/{org.id}", org.spec.name)

    # -- demographics and core

    def make_core(self) -> None:
        rng = self.rng
        region_code = "77" if rng.random() < 0.55 else "78"
        self.region_orgs = self.dir.regions[region_code]
        self.region = self.region_orgs.region
        if self._min_age is not None and self._max_age is not None:
            age = rng.randint(self._min_age, self._max_age)
        else:
            pick = rng.random()
            for lo, hi, share in _AGE_BANDS:
                if pick < share:
                    age = rng.randint(lo, hi)
                    break
                pick -= share
            else:  # pragma: no cover - shares add up to 1
                age = 40
        self.birth = self.today - rng.randrange(int(age * 365.25) + 1, int((age + 1) * 365.25))
        self.age = self.age_on(self.last)
        self.gender = "female" if rng.random() < 0.54 else "male"
        self.person = _draw_person(rng, self.pools, self.gender)
        self.child = self.age < 18
        # Children are attached to the children's polyclinic and move to an
        # adult one at 18; a card spanning that birthday shows both.
        self.child_poly = self.region_orgs.child_polyclinic
        self.child_gp = rng.choice(self.child_poly.doctors("pediatrician"))
        self.adult_poly = rng.choice(self.region_orgs.adult_polyclinics)
        self.adult_gp = rng.choice(self.adult_poly.doctors("therapist"))
        if self.child:
            self.polyclinic, self.gp = self.child_poly, self.child_gp
        else:
            self.polyclinic, self.gp = self.adult_poly, self.adult_gp
        self.insurer = rng.choice(self.region_orgs.insurers)
        self.patient_ref = self.add(self.patient_resource())
        self.add(self.coverage_resource())
        self.make_chronic_conditions()
        self.make_allergies()

    def patient_resource(self) -> Resource:
        rng, region = self.rng, self.region
        self.snils = _new_snils(rng)
        self.enp = ids.make_enp(region.code + _digits(rng, 13))
        identifiers: list[Resource] = [
            {
                "use": "official",
                "type": _cc(cat.V2_0203, "SB", "Social Beneficiary Identifier", "СНИЛС"),
                "system": ids.SNILS_SYSTEM,
                "value": self.snils,
            },
            {
                "use": "official",
                "type": _cc(cat.V2_0203, "MB", "Member Number", "Полис ОМС (ЕНП)"),
                "system": ids.ENP_SYSTEM,
                "value": self.enp,
                "assigner": self.org(self.insurer),
            },
        ]
        if self.age >= 14:  # a passport is issued at 14, replaced at 20 and 45
            issued_at = 45 if self.age >= 45 else 20 if self.age >= 20 else 14
            year = dt.date.fromordinal(self.birth).year + issued_at
            series = f"{region.okato}{year % 100:02d}"
            identifiers.append(ids.passport_identifier(series + f"{rng.randrange(100000, 999999)}"))
        street = rng.choice(self.pools.streets)
        house, flat = rng.randint(1, 120), rng.randint(1, 300)
        postal = f"{rng.randint(region.postal_low, region.postal_high):06d}"
        line = f"{street}, д. {house}, кв. {flat}"
        phone = f"+7 9{_digits(rng, 2)} {_digits(rng, 3)}-{_digits(rng, 2)}-{_digits(rng, 2)}"
        return {
            "resourceType": "Patient",
            "meta": {
                "security": [
                    _coding(
                        "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "HTEST",
                        "test health data",
                    )
                ]
            },
            "identifier": identifiers,
            "active": True,
            "name": _human_name(self.person),
            "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
            "gender": self.gender,
            "birthDate": _date(self.birth),
            "address": [
                {
                    "use": "home",
                    "type": "physical",
                    "text": f"{postal}, {region.name}, {line}",
                    "line": [line],
                    "city": region.city,
                    "state": region.name,
                    "postalCode": postal,
                    "country": "RU",
                }
            ],
            "communication": [
                {
                    "language": _cc("urn:ietf:bcp:47", "ru", "Russian", "русский"),
                    "preferred": True,
                }
            ],
            "generalPractitioner": [self.prac(self.gp)],
            "managingOrganization": self.org(self.polyclinic),
        }

    def coverage_resource(self) -> Resource:
        # The policy covers the whole history the card shows (services outside a policy
        # period are flagged as unbillable, which real cards rarely are); the random draw
        # stays so that the rest of the generated population does not change.
        earliest = self.today - self.rng.randint(400, 4000)
        start = max(self.birth, min(earliest, self.today - int(self.years * 365.25) - 30))
        return {
            "resourceType": "Coverage",
            "identifier": [{"system": ids.ENP_SYSTEM, "value": self.enp}],
            "status": "active",
            "type": _cc(cat.V3_ACT_CODE, "PUBLICPOL", "public healthcare", "ОМС"),
            "subscriberId": self.enp,
            "beneficiary": _ref(self.patient_ref),
            "period": {"start": _date(start)},
            "payor": [self.org(self.insurer)],
        }

    def band(self) -> int:
        return 0 if self.age < 18 else 1 if self.age < 45 else 2 if self.age < 65 else 3

    def make_chronic_conditions(self) -> None:
        rng, band = self.rng, self.band()
        candidates = [
            c
            for c in cat.CONDITIONS
            if c.chronic and (c.sex is None or c.sex == self.gender) and c.prevalence[band] > 0
        ]
        chosen = [c for c in candidates if rng.random() < c.prevalence[band]]
        if self._chronic_boost:
            rest = [c for c in candidates if c not in chosen]
            rng.shuffle(rest)
            chosen.extend(rest[: max(0, self._chronic_boost - len(chosen))])
        age_days = self.today - self.birth
        for spec in chosen:
            onset = self.today - rng.randint(30, max(31, min(age_days - 30, 15 * 365)))
            recorded = min(self.last, onset + rng.randint(0, 20))
            ref = self.add(
                {
                    "resourceType": "Condition",
                    "clinicalStatus": _cc(cat.CONDITION_CLINICAL, "active", "Active"),
                    "verificationStatus": _cc(cat.CONDITION_VERIFICATION, "confirmed", "Confirmed"),
                    "category": [
                        _cc(cat.CONDITION_CATEGORY, "problem-list-item", "Problem List Item")
                    ],
                    "code": _icd(spec.code),
                    "subject": _ref(self.patient_ref),
                    "onsetDateTime": _date(onset),
                    "recordedDate": _date(recorded),
                    "recorder": self.prac(self.gp),
                }
            )
            self.chronic.append(_Chronic(spec, ref, onset))

    def make_allergies(self) -> None:
        rng = self.rng
        if rng.random() >= 0.18:
            return
        for category, substance, atc, reaction, criticality in rng.sample(
            cat.ALLERGIES, rng.choice((1, 1, 2))
        ):
            code: Resource = {"text": substance}
            if atc is not None:
                code["coding"] = [_coding(cat.ATC_SYSTEM, atc, substance)]
            recorded = self.today - rng.randint(60, max(61, min(self.today - self.birth, 3650)))
            self.add(
                {
                    "resourceType": "AllergyIntolerance",
                    "clinicalStatus": _cc(cat.ALLERGY_CLINICAL, "active", "Active"),
                    "verificationStatus": _cc(cat.ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
                    "type": "allergy",
                    "category": [category],
                    "criticality": criticality,
                    "code": code,
                    "patient": _ref(self.patient_ref),
                    "recordedDate": _date(max(recorded, self.birth + 30)),
                    "recorder": self.prac(self.gp),
                    "reaction": [
                        {
                            "manifestation": [{"text": reaction}],
                            "severity": "severe" if criticality == "high" else "mild",
                        }
                    ],
                }
            )

    # -- planning

    def plan(self) -> list[tuple[int, int, tuple[Any, ...]]]:
        """All episodes as (day, tiebreak, action) — built first, run in date order."""
        rng = self.rng
        start = max(self.birth + 1, self.today - int(self.years * 365.25))
        span = self.last - start
        events: list[tuple[int, int, tuple[Any, ...]]] = []
        if span <= 0:
            return events
        n = 0

        def at(day: int, action: tuple[Any, ...]) -> None:
            nonlocal n
            n += 1
            events.append((day, n, action))

        years = span / 365.25
        # acute illness: children are ill more often, the old a little more
        lam = 2.4 if self.age < 7 else 1.6 if self.child else 0.9 if self.age < 65 else 1.1
        acute = [c for c in cat.CONDITIONS if not c.chronic and (c.sex in (None, self.gender))]
        weights = [c.weight[0 if self.child else 1] for c in acute]
        for _ in range(_poisson(rng, lam * years)):
            day = start + rng.randrange(span)
            if rng.random() < 0.06:
                at(day, ("acute_rare", rng.choice(cat.LONG_TAIL_ICD10)))
            else:
                at(day, ("acute", rng.choices(acute, weights)[0]))
        # chronic follow-up: about twice a year per condition after diagnosis
        for chronic in self.chronic:
            first = max(start, chronic.onset + 7)
            if first >= self.last:
                continue
            visits = _poisson(rng, 0.8 * self.follow_up_rate * (self.last - first) / 365.25)
            for _ in range(visits):
                at(first + rng.randrange(self.last - first), ("chronic", chronic))
        # preventive examinations, one a year at most
        year = dt.date.fromordinal(start).year
        while True:
            jan1 = dt.date(year, 1, 1).toordinal()
            lo, hi = max(jan1, start), min(dt.date(year, 12, 31).toordinal(), self.last)
            if lo > self.last:
                break
            if hi > lo:
                day = lo + rng.randrange(hi - lo)
                age = self.age_on(day)
                if age < 18:
                    if age >= 1 and rng.random() < 0.75:
                        at(day, ("exam", "child-prof-exam"))
                elif rng.random() < 0.45:
                    # 404н: by the age reached this calendar year, not on the exam day
                    kind = eligibility(dt.date.fromordinal(self.birth), year).kind
                    at(day, ("exam", kind))
                self.plan_certificates(day, age, at)
                # seasonal flu vaccination, October–November
                flu_day = max(lo, dt.date(year, 10, 1).toordinal() + rng.randrange(60))
                flu_p = 0.4 if age < 18 else 0.25 if age < 60 else 0.5
                if flu_day <= hi and age >= 1 and rng.random() < flu_p:
                    at(flu_day, ("vaccine", cat.VACCINES["flu"], 1, False))
            year += 1
        self.plan_calendar(at)
        events.sort(key=lambda e: (e[0], e[1]))
        return events

    def plan_certificates(self, day: int, age: int, at: _At) -> None:
        rng = self.rng
        if 7 <= age <= 15 and rng.random() < 0.3:
            summer = dt.date(dt.date.fromordinal(day).year, 6, 1).toordinal() + rng.randrange(60)
            if summer <= self.last:
                at(summer, ("certificate", cat.DOCUMENTS["079u"]))
        if 5 <= age <= 65 and rng.random() < 0.12:
            at(day, ("certificate", cat.DOCUMENTS["pool"]))
        if 7 <= age <= 17 and rng.random() < 0.2:
            at(day, ("certificate", cat.DOCUMENTS["sport"]))
        if age in (16, 17) and rng.random() < 0.35:
            at(day, ("certificate", cat.DOCUMENTS["086u"]))
        if 18 <= age <= 65 and rng.random() < 0.05:
            at(day, ("certificate", cat.DOCUMENTS["driver"]))

    def plan_calendar(self, at: _At) -> None:
        """National calendar doses (as recorded since digitisation) and adult ADS-M boosters."""
        rng = self.rng
        for key, age_days, dose, revaccination in cat.NATIONAL_CALENDAR:
            day = self.birth + age_days + (rng.randint(0, 20) if age_days >= 30 else 0)
            if _DIGITISED_FROM <= day <= self.last and rng.random() < 0.95:
                at(day, ("vaccine", cat.VACCINES[key], dose, revaccination))
        booster_age, dose = 24, 7
        while True:
            day = self.birth + int(booster_age * 365.25) + rng.randint(0, 300)
            if day > self.last:
                break
            if day >= _DIGITISED_FROM and rng.random() < 0.6:
                at(day, ("vaccine", cat.VACCINES["adsm"], dose, True))
            booster_age += 10
            dose += 1

    # -- running

    def run(self, events: Sequence[tuple[int, int, tuple[Any, ...]]]) -> list[list[Resource]]:
        """Run episodes in date order; return the entries each one produced."""
        episodes: list[list[Resource]] = []
        for day, _, action in events:
            mark = len(self.entries)
            kind = action[0]
            if kind == "acute":
                self.ep_acute(day, action[1].code, action[1])
            elif kind == "acute_rare":
                self.ep_acute(day, action[1], None)
            elif kind == "chronic":
                self.ep_chronic(day, action[1])
            elif kind == "exam":
                self.ep_exam(day, action[1])
            elif kind == "vaccine":
                self.ep_vaccine(day, action[1], action[2], action[3])
            elif kind == "certificate":
                self.ep_certificate(day, action[1])
            episodes.append(self.entries[mark:])
            del self.entries[mark:]
        return episodes

    # -- who sees the patient

    def gp_on(self, day: int) -> tuple[_Staff, _Org]:
        """The attending doctor and polyclinic at the patient's age on ``day``."""
        if self.age_on(day) < 18:
            return self.child_gp, self.child_poly
        return self.adult_gp, self.adult_poly

    def doctor_for(self, specialty: str, day: int) -> tuple[_Staff, _Org]:
        gp, poly = self.gp_on(day)
        doctors = poly.doctors(specialty) if specialty not in ("therapist", "pediatrician") else ()
        if doctors:
            return self.rng.choice(doctors), poly
        return gp, poly

    # -- resources

    def encounter(
        self,
        day: int,
        minute: int,
        doctor: _Staff,
        org: _Org,
        kind: str,
        reason: Resource | None,
        *,
        first: bool = True,
        cls: str = "AMB",
        end_day: int | None = None,
        condition: str | None = None,
    ) -> str:
        spec = cat.SPECIALTIES[doctor.specialty]
        self.clock = minute
        duration = 20 if kind in ("visit", "home-visit") else 60
        enc: Resource = {
            "resourceType": "Encounter",
            "status": "finished",
            "class": _coding(
                cat.V3_ACT_CODE,
                cls,
                {"AMB": "ambulatory", "HH": "home health", "IMP": "inpatient encounter"}[cls],
            ),
            "type": [
                _cc(
                    cat.ENCOUNTER_KIND_SYSTEM,
                    kind,
                    cat.ENCOUNTER_KINDS[kind],
                    cat.ENCOUNTER_KINDS[kind],
                )
            ],
            "subject": _ref(self.patient_ref),
            "participant": [
                {
                    "type": [_cc(cat.V3_PARTICIPATION_TYPE, "ATND", "attender")],
                    "individual": self.prac(doctor),
                }
            ],
            "period": {
                "start": _dt(day, minute),
                "end": _dt(end_day, 11 * 60)
                if end_day is not None
                else _dt(day, minute + duration),
            },
            "serviceProvider": self.org(org),
        }
        code = spec.nmu_first if first else spec.nmu_repeat
        if kind in ("visit", "home-visit") and code is not None:
            enc["serviceType"] = _cc(cat.NMU_SYSTEM, code, cat.nmu_visit_display(spec, first=first))
        if reason is not None:
            enc["reasonCode"] = [reason]
        if condition is not None:
            enc["diagnosis"] = [{"condition": _ref(condition), "rank": 1}]
        if org.location_id is not None and cls != "HH":
            enc["location"] = [{"location": _ref(f"Location/{org.location_id}")}]
        if cls == "IMP":
            enc["hospitalization"] = {
                "dischargeDisposition": _cc(cat.DISCHARGE_DISPOSITION, "home", "Home")
            }
        return self.add(enc)

    def condition(self, day: int, code: str, encounter: str, doctor: _Staff) -> str:
        rng = self.rng
        resolved_on = day + rng.randint(5, 14)
        resource: Resource = {
            "resourceType": "Condition",
            "clinicalStatus": _cc(cat.CONDITION_CLINICAL, "resolved", "Resolved"),
            "verificationStatus": _cc(cat.CONDITION_VERIFICATION, "confirmed", "Confirmed"),
            "category": [_cc(cat.CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")],
            "code": _icd(code),
            "subject": _ref(self.patient_ref),
            "encounter": _ref(encounter),
            "onsetDateTime": _date(max(self.birth, day - rng.randint(0, 3))),
            "recordedDate": _date(day),
            "recorder": self.prac(doctor),
        }
        if resolved_on <= self.last:
            resource["abatementDateTime"] = _date(resolved_on)
        else:  # still ill today
            resource["clinicalStatus"] = _cc(cat.CONDITION_CLINICAL, "active", "Active")
        return self.add(resource)

    def prescription(
        self, day: int, minute: int, atc: str, doctor: _Staff, encounter: str, reason: Resource
    ) -> None:
        med = cat.MEDICATIONS[atc]
        valid_to = day + 60  # form 107-1/у is valid 60 days
        course_end = day + med.course_days
        # active while it can still be dispensed and the course is not over
        active = valid_to >= self.today and (med.course_days == 0 or course_end >= self.today)
        dosage: Resource = {
            "sequence": 1,
            "text": med.dose_text,
            "timing": {"repeat": {"frequency": med.frequency, "period": 1, "periodUnit": "d"}},
            "route": _cc(cat.V3_ROUTE, med.route, cat.ROUTES[med.route]),
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": med.unit}}],
        }
        if med.course_days:
            dosage["timing"]["repeat"]["boundsDuration"] = _qty(med.course_days, "сут", "d")
        self.add(
            {
                "resourceType": "MedicationRequest",
                "identifier": [
                    {"system": cat.PRESCRIPTION_NUMBER_SYSTEM, "value": self.doc_number("Р")}
                ],
                "status": "active" if active else "completed",
                "intent": "order",
                "category": [_cc(cat.MEDREQ_CATEGORY, "community", "Community")],
                "medicationCodeableConcept": _cc(cat.ATC_SYSTEM, atc, med.ru, med.ru),
                "subject": _ref(self.patient_ref),
                "encounter": _ref(encounter),
                "authoredOn": _dt(day, minute),
                "requester": self.prac(doctor),
                "reasonCode": [reason],
                "dosageInstruction": [dosage],
                "dispenseRequest": {
                    "validityPeriod": {"start": _date(day), "end": _date(valid_to)},
                    "quantity": {"value": med.quantity, "unit": med.unit},
                },
            }
        )

    def referral(
        self,
        day: int,
        minute: int,
        doctor: _Staff,
        encounter: str,
        category: tuple[str, str],
        code: Resource,
        performer: _Org,
        reason: Resource | None,
        *,
        done: bool,
        priority: str = "routine",
    ) -> str:
        resource: Resource = {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": cat.REFERRAL_NUMBER_SYSTEM, "value": self.doc_number("Н")}],
            "status": "completed" if done else "active",
            "intent": "order",
            "category": [_cc(cat.SNOMED_SYSTEM, category[0], category[1])],
            "priority": priority,
            "code": code,
            "subject": _ref(self.patient_ref),
            "encounter": _ref(encounter),
            "authoredOn": _dt(day, minute),
            "requester": self.prac(doctor),
            "performer": [self.org(performer)],
        }
        if reason is not None:
            resource["reasonCode"] = [reason]
        return self.add(resource)

    def lab_value(self, key: str, test: cat.LabTest, day: int, context: Sequence[str]) -> float:
        rng = self.rng
        age = self.age_on(day)
        lo, hi = test.child if age < 18 else test.male if self.gender == "male" else test.female
        mean, sd = (lo + hi) / 2, (hi - lo) / 4.2
        infectious = any(c.startswith(_INFECTIOUS_PREFIXES) for c in context)
        if key == "hgb" and "D50.9" in context:
            mean = lo - 12
        elif key == "wbc" and infectious:
            mean += 4.5
        elif key == "esr" and infectious:
            mean += 14
        elif key == "glucose" and "E11.9" in context:
            mean, sd = 7.6, 1.4
        elif key == "hba1c" and "E11.9" in context:
            mean, sd = 7.2, 0.8
        elif key == "chol" and ("E78.0" in context or "I25.1" in context):
            mean, sd = 6.2, 0.8
        elif key == "creat" and ("I50.0" in context or age >= 70):
            mean += 18
        elif key in ("alt", "ast") and ("E66.0" in context or "K80.2" in context):
            mean += 12
        value = max(rng.gauss(mean, sd), hi * 0.05 if hi else 0.1)
        return round(value, test.decimals) if test.decimals else round(value)

    def lab_panel(
        self,
        day: int,
        panel: str,
        doctor: _Staff,
        encounter: str,
        context: Sequence[str],
        *,
        performer: _Org | None = None,
        analytes: Sequence[str] | None = None,
        referral: bool = True,
    ) -> None:
        """A lab order, its result Observations and the DiagnosticReport grouping them."""
        rng = self.rng
        system, code, ru, keys = cat.LAB_PANELS[panel]
        keys = tuple(analytes) if analytes is not None else keys
        lab = performer or self.region_orgs.lab
        lab_doctor = rng.choice(lab.doctors("lab-doctor")) if lab.doctors("lab-doctor") else None
        order_minute = self.after_visit()
        panel_code = _cc(system, code, ru, ru)
        basis = []
        if referral:
            basis = [
                _ref(
                    self.referral(
                        day,
                        order_minute,
                        doctor,
                        encounter,
                        ("108252007", "Laboratory procedure"),
                        panel_code,
                        lab,
                        None,
                        done=True,
                    )
                )
            ]
        taken = min(self.last, day + rng.randint(0, 2))
        taken_min = self.minute(8 * 60, 11 * 60)
        issued_day = min(self.last, taken + 1)
        effective, issued = _dt(taken, taken_min), _dt(issued_day, 15 * 60)
        results = []
        for key in keys:
            test = cat.LAB_TESTS[key]
            value = self.lab_value(key, test, taken, context)
            age = self.age_on(taken)
            lo, hi = test.child if age < 18 else test.male if self.gender == "male" else test.female
            flag = ("L", "Low") if value < lo else ("H", "High") if value > hi else ("N", "Normal")
            reference_range: Resource = {"high": _qty(hi, test.unit, test.ucum)}
            if lo > 0:
                reference_range["low"] = _qty(lo, test.unit, test.ucum)
            observation: Resource = {
                "resourceType": "Observation",
                "status": "final",
                "category": _obs_category("laboratory", "Laboratory"),
                "code": _cc(cat.LOINC_SYSTEM, test.loinc, test.ru, test.ru),
                "subject": _ref(self.patient_ref),
                "encounter": _ref(encounter),
                "effectiveDateTime": effective,
                "issued": issued,
                "performer": [self.org(lab)],
                "valueQuantity": _qty(value, test.unit, test.ucum),
                "interpretation": [_cc(cat.V3_INTERPRETATION, flag[0], flag[1])],
                "referenceRange": [reference_range],
            }
            if basis:
                observation["basedOn"] = [dict(basis[0])]
            results.append(_ref(self.add(observation)))
        report: Resource = {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "category": _lab_category(),
            "code": panel_code,
            "subject": _ref(self.patient_ref),
            "encounter": _ref(encounter),
            "effectiveDateTime": effective,
            "issued": issued,
            "performer": [self.org(lab)],
            "result": results,
        }
        if basis:
            report["basedOn"] = basis
        if lab_doctor is not None:
            report["resultsInterpreter"] = [self.prac(lab_doctor)]
        self.add(report)

    def imaging(
        self,
        day: int,
        key: str,
        doctor: _Staff,
        encounter: str,
        reason: Resource | None,
        abnormal: bool,
    ) -> None:
        """Referral, the study visit, ImagingStudy and its DiagnosticReport."""
        rng = self.rng
        spec = cat.IMAGING[key]
        centre = self.region_orgs.imaging
        service = _cc(cat.NMU_SYSTEM, spec.nmu, spec.ru, spec.ru)
        study_day = day + rng.randint(1, 14)
        done = study_day <= self.last
        order = self.referral(
            day,
            self.after_visit(),
            doctor,
            encounter,
            ("363679005", "Imaging"),
            service,
            centre,
            reason,
            done=done,
        )
        if not done:
            return
        radiologist = rng.choice(centre.doctors("radiologist"))
        minute = self.minute()
        visit = self.encounter(study_day, minute, radiologist, centre, "diagnostic", reason)
        instances = rng.randint(*spec.instances)
        modality = _coding(cat.DICOM_DCM_SYSTEM, spec.modality, spec.modality_display)
        started = _dt(study_day, minute)
        study = self.add(
            {
                "resourceType": "ImagingStudy",
                "identifier": [
                    {
                        "system": cat.DICOM_UID_SYSTEM,
                        "value": f"urn:oid:2.25.{rng.getrandbits(122)}",
                    }
                ],
                "status": "available",
                "modality": [modality],
                "subject": _ref(self.patient_ref),
                "encounter": _ref(visit),
                "started": started,
                "basedOn": [_ref(order)],
                "referrer": self.prac(doctor),
                "interpreter": [self.prac(radiologist)],
                "numberOfSeries": 1,
                "numberOfInstances": instances,
                "procedureCode": [service],
                "location": _ref(f"Location/{centre.location_id}"),
                "description": spec.ru,
                "series": [
                    {
                        "uid": f"2.25.{rng.getrandbits(122)}",
                        "number": 1,
                        "modality": dict(modality),
                        "description": spec.body_part,
                        "numberOfInstances": instances,
                    }
                ],
            }
        )
        conclusion = rng.choice(spec.abnormal if abnormal else spec.normal)
        self.add(
            {
                "resourceType": "DiagnosticReport",
                "basedOn": [_ref(order)],
                "status": "final",
                "category": _imaging_category(),
                "code": _cc(cat.NMU_SYSTEM, spec.nmu, spec.ru, spec.ru),
                "subject": _ref(self.patient_ref),
                "encounter": _ref(visit),
                "effectiveDateTime": started,
                "issued": _dt(min(self.last, study_day + rng.randint(0, 2)), 17 * 60),
                "performer": [self.org(centre)],
                "resultsInterpreter": [self.prac(radiologist)],
                "imagingStudy": [_ref(study)],
                "conclusion": conclusion,
            }
        )

    def document(
        self,
        day: int,
        minute: int,
        spec: cat.DocumentSpec,
        doctor: _Staff,
        org: _Org,
        encounter: str,
        body: str,
        *,
        period: tuple[int, int] | None = None,
    ) -> None:
        """A certificate or report: Russian text attached as base64 ``text/plain``."""
        if period is None:
            period = (day, day + spec.valid_days) if spec.valid_days else (day, day)
        lines = [
            spec.ru,
            f"Медицинская организация: {org.spec.name}",
            f"Пациент: {self.person.full}, дата рождения {_ru_date(self.birth)}",
            body,
            f"Врач: {_position(cat.SPECIALTIES[doctor.specialty], org)} "
            f"{self.dir.people[doctor.practitioner_id].short}",
            f"Дата: {_ru_date(day)}",
        ]
        if spec.valid_days:
            lines.append(f"Действительна до {_ru_date(period[1])}")
        data = base64.b64encode("\n".join(lines).encode("utf-8")).decode("ascii")
        type_coding = [_coding(cat.DOCUMENT_KIND_SYSTEM, spec.code, spec.ru)]
        if spec.loinc is not None:
            type_coding.append(
                _coding(
                    cat.LOINC_SYSTEM,
                    spec.loinc,
                    "Consult note" if spec.loinc == "11488-4" else "Discharge summary",
                )
            )
        self.add(
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "docStatus": "final",
                "type": {"coding": type_coding, "text": spec.ru},
                "category": [
                    _cc(
                        cat.DOCUMENT_CATEGORY_SYSTEM,
                        spec.category,
                        cat.DOCUMENT_CATEGORIES[spec.category],
                    )
                ],
                "subject": _ref(self.patient_ref),
                "date": _dt(day, minute),
                "author": [self.prac(doctor)],
                "custodian": self.org(org),
                "description": spec.ru,
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "language": "ru",
                            "data": data,
                            "title": spec.ru,
                            "creation": _dt(day, minute),
                        }
                    }
                ],
                "context": {
                    "encounter": [_ref(encounter)],
                    "period": {"start": _date(period[0]), "end": _date(period[1])},
                },
            }
        )

    def hospitalization(
        self,
        day: int,
        doctor: _Staff,
        encounter: str,
        reason: Resource,
        condition: str | None,
        specialty: str,
        *,
        urgent: bool = False,
    ) -> None:
        """Referral, the inpatient stay, its labs and the discharge summary."""
        rng = self.rng
        hospital = self.region_orgs.hospital
        admit = day + (rng.randint(0, 1) if urgent else rng.randint(2, 20))
        discharge = admit + rng.randint(4, 12)
        done = discharge <= self.last
        self.referral(
            day,
            self.after_visit(),
            doctor,
            encounter,
            ("3457005", "Patient referral"),
            _cc(
                cat.SNOMED_SYSTEM,
                "32485007",
                "Госпитализация",
                "Экстренная госпитализация" if urgent else "Плановая госпитализация",
            ),
            hospital,
            reason,
            done=done,
            priority="urgent" if urgent else "routine",
        )
        if not done:
            return
        attending = rng.choice(hospital.doctors(specialty) or hospital.doctors("therapist"))
        stay = self.encounter(
            admit,
            self.minute(9 * 60, 14 * 60),
            attending,
            hospital,
            "hospitalization",
            reason,
            cls="IMP",
            end_day=discharge,
            condition=condition,
        )
        codes = [reason["coding"][0]["code"]]
        # the hospital's own lab, ordered inside the stay: no referral
        self.lab_panel(admit, "cbc", attending, stay, codes, performer=hospital, referral=False)
        self.lab_panel(admit, "biochem", attending, stay, codes, performer=hospital, referral=False)
        self.document(
            discharge,
            11 * 60,
            cat.DOCUMENTS["discharge"],
            attending,
            hospital,
            stay,
            f"Находился на стационарном лечении с {_ru_date(admit)} по {_ru_date(discharge)}. "
            f"Диагноз: {reason['coding'][0]['code']} {reason['text']}. "
            "Выписан в удовлетворительном состоянии под наблюдение участкового врача.",
            period=(admit, discharge),
        )

    # -- episodes

    def ep_acute(self, day: int, code: str, spec: cat.ConditionSpec | None) -> None:
        rng = self.rng
        specialty = spec.specialty if spec is not None else "therapist"
        doctor, org = self.doctor_for(specialty if rng.random() < 0.4 else "therapist", day)
        age = self.age_on(day)
        home = (age < 18 or age >= 75) and rng.random() < 0.3 and code.startswith("J")
        minute = self.minute()
        reason = _icd(code)
        enc = self.encounter(
            day,
            minute,
            doctor,
            org,
            "home-visit" if home else "visit",
            reason,
            cls="HH" if home else "AMB",
        )
        # Encounter.diagnosis and Condition.encounter point at each other.
        enc_resource = self.entries[-1]["resource"]
        condition = self.condition(day, code, enc, doctor)
        enc_resource["diagnosis"] = [{"condition": _ref(condition), "rank": 1}]
        if spec is None:
            return
        context = [code] + [c.spec.code for c in self.chronic if c.onset <= day]
        for atc in spec.meds:
            if rng.random() < 0.75:
                self.prescription(day, minute, atc, doctor, enc, _icd(code))
        for panel in spec.labs:
            if rng.random() < 0.35:
                self.lab_panel(day, panel, doctor, enc, context)
        if spec.imaging is not None and rng.random() < (0.85 if code == "J18.9" else 0.4):
            self.imaging(day, spec.imaging, doctor, enc, reason, abnormal=rng.random() < 0.7)
        repeat_day = day + rng.randint(5, 10)
        if repeat_day <= self.last and rng.random() < 0.3:
            self.encounter(
                repeat_day,
                self.minute(),
                doctor,
                org,
                "visit",
                reason,
                first=False,
                condition=condition,
            )
        elder = 2.0 if age >= 65 else 1.0
        if rng.random() < spec.hospital_rate * elder:
            self.hospitalization(day, doctor, enc, reason, condition, spec.specialty, urgent=True)

    def ep_chronic(self, day: int, chronic: _Chronic) -> None:
        rng = self.rng
        spec = chronic.spec
        reason = _icd(spec.code)
        context = [c.spec.code for c in self.chronic if c.onset <= day]
        gp, org = self.gp_on(day)
        gp_minute = self.minute()
        gp_visit = self.encounter(
            day, gp_minute, gp, org, "visit", reason, first=False, condition=chronic.ref
        )
        doctor, visit, minute = gp, gp_visit, gp_minute
        specialist, _ = self.doctor_for(spec.specialty, day)
        if specialist is not gp:
            nmu = cat.SPECIALTIES[specialist.specialty]
            see_on = day + rng.randint(3, 14)
            done = see_on <= self.last
            self.referral(
                day,
                gp_minute,
                gp,
                gp_visit,
                ("3457005", "Patient referral"),
                _cc(
                    cat.NMU_SYSTEM,
                    nmu.nmu_first or "",
                    cat.nmu_visit_display(nmu, first=True),
                    f"Консультация: {nmu.position}",
                ),
                org,
                reason,
                done=done,
            )
            if done:
                minute = self.minute()
                visit = self.encounter(
                    see_on, minute, specialist, org, "visit", reason, condition=chronic.ref
                )
                doctor, day = specialist, see_on
                if rng.random() < 0.5:
                    self.document(
                        day,
                        minute + 20,
                        cat.DOCUMENTS["consult"],
                        specialist,
                        org,
                        visit,
                        f"Диагноз: {spec.code} {spec.ru}. Состояние стабильное. "
                        "Рекомендовано продолжить назначенную терапию, контроль через 6 месяцев.",
                    )
        for atc in spec.meds:
            if rng.random() < 0.8:
                self.prescription(day, minute, atc, doctor, visit, reason)
        for panel in spec.labs:
            if rng.random() < 0.4:
                self.lab_panel(day, panel, doctor, visit, context)
        if spec.imaging is not None and rng.random() < 0.2:
            self.imaging(day, spec.imaging, doctor, visit, reason, abnormal=rng.random() < 0.5)
        if rng.random() < spec.hospital_rate:
            self.hospitalization(day, doctor, visit, reason, chronic.ref, spec.specialty)

    def ep_exam(self, day: int, kind: str) -> None:
        rng = self.rng
        age = self.age_on(day)
        reason = _icd("Z00.1" if age < 18 else "Z00.0")
        minute = self.minute(8 * 60, 12 * 60)
        gp, poly = self.gp_on(day)
        enc = self.encounter(day, minute, gp, poly, kind, reason)
        effective = _dt(day, minute + 10)
        codes = {c.spec.code for c in self.chronic if c.onset <= day}

        def vital(key: str, value: float | None) -> Resource:
            loinc, ru, ucum, unit = cat.VITALS[key]
            observation: Resource = {
                "resourceType": "Observation",
                "status": "final",
                "category": _obs_category("vital-signs", "Vital Signs"),
                "code": _cc(cat.LOINC_SYSTEM, loinc, ru, ru),
                "subject": _ref(self.patient_ref),
                "encounter": _ref(enc),
                "effectiveDateTime": effective,
                "performer": [self.prac(gp)],
            }
            if value is not None:
                observation["valueQuantity"] = _qty(value, unit, ucum)
            return observation

        if age >= 18:
            height = rng.gauss(177 if self.gender == "male" else 164, 6.5)
            bmi = rng.gauss(33, 3) if "E66.0" in codes else rng.gauss(25.5, 3.5)
        else:
            height = min(75 + 6.2 * age, 176 if self.gender == "male" else 165) + rng.gauss(0, 4)
            bmi = rng.gauss(16.5 + 0.25 * max(0, age - 6), 1.5)
        weight = bmi * (height / 100) ** 2
        hypertensive = "I10" in codes or "I11.9" in codes
        if age >= 18:
            sbp = round(rng.gauss(142 if hypertensive else 121, 11))
            dbp = round(rng.gauss(89 if hypertensive else 77, 7))
        else:
            sbp, dbp = round(rng.gauss(104, 8)), round(rng.gauss(64, 6))
        bp = vital("bp", None)
        bp["component"] = [
            {
                "code": _cc(cat.LOINC_SYSTEM, cat.VITALS[k][0], cat.VITALS[k][1]),
                "valueQuantity": _qty(v, "мм рт. ст.", "mm[Hg]"),
            }
            for k, v in (("sbp", sbp), ("dbp", dbp))
        ]
        self.add(bp)
        self.add(vital("height", round(height, 1)))
        self.add(vital("weight", round(weight, 1)))
        self.add(vital("bmi", round(weight / (height / 100) ** 2, 1)))
        context = sorted(codes)
        if age >= 18:
            self.lab_panel(day, "biochem", gp, enc, context, analytes=("glucose", "chol"))
            if kind == "dispanserization" and rng.random() < 0.7:
                self.lab_panel(day, "cbc", gp, enc, context)
            if rng.random() < 0.5:
                self.imaging(day, "fluoro", gp, enc, reason, abnormal=rng.random() < 0.08)
        elif rng.random() < 0.5:
            self.lab_panel(day, "cbc", gp, enc, context)
        group = self.health_group(codes, bmi, age)
        self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": _obs_category("exam", "Exam"),
                "code": _cc(
                    cat.OBSERVATION_KIND_SYSTEM,
                    "health-group",
                    cat.OBSERVATION_KINDS["health-group"],
                    cat.OBSERVATION_KINDS["health-group"],
                ),
                "subject": _ref(self.patient_ref),
                "encounter": _ref(enc),
                "effectiveDateTime": _dt(day, minute + 40),
                "performer": [self.prac(gp)],
                "valueCodeableConcept": _cc(
                    cat.HEALTH_GROUP_SYSTEM,
                    group,
                    cat.HEALTH_GROUPS[group],
                    cat.HEALTH_GROUPS[group],
                ),
            }
        )
        if group == "IIIa" and rng.random() < 0.3:
            chronic = next(c for c in self.chronic if c.spec.code in codes)
            specialist, _ = self.doctor_for(chronic.spec.specialty, day)
            nmu = cat.SPECIALTIES[specialist.specialty]
            if nmu.nmu_first is not None and specialist is not gp:
                self.referral(
                    day,
                    minute + 45,
                    gp,
                    enc,
                    ("3457005", "Patient referral"),
                    _cc(cat.NMU_SYSTEM, nmu.nmu_first, cat.nmu_visit_display(nmu, first=True)),
                    poly,
                    _icd(chronic.spec.code),
                    done=day + 30 < self.today,
                )

    def health_group(self, codes: set[str], bmi: float, age: int) -> str:
        """Adults: I, II, IIIa (NCD under observation), IIIb; children here: I–III."""
        if age < 18:
            return "III" if codes else "II" if bmi > 21 or self.rng.random() < 0.3 else "I"
        specs = [cat.CONDITION_BY_CODE[c] for c in codes]
        if any(s.dispensary == "IIIa" for s in specs):
            return "IIIa"
        if any(s.dispensary == "IIIb" for s in specs):
            return "IIIb"
        return "II" if specs or bmi >= 25 else "I"

    def ep_vaccine(self, day: int, vaccine: cat.VaccineSpec, dose: int, revacc: bool) -> None:
        rng = self.rng
        in_maternity = day - self.birth < 7
        immunization: Resource = {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {
                "coding": [
                    _coding(cat.CVX_SYSTEM, vaccine.cvx, vaccine.ru),
                    _coding(cat.VACCINE_SYSTEM, vaccine.key, vaccine.ru),
                ],
                "text": vaccine.ru,
            },
            "patient": _ref(self.patient_ref),
            "occurrenceDateTime": _dt(day, self.minute(9 * 60, 17 * 60)),
            "recorded": _date(day),
            "primarySource": not in_maternity,
            "lotNumber": f"{rng.choice('АБВГДЕКМНПРСТ')}{rng.randrange(100, 999)}-{day % 97:02d}",
            "route": _cc(cat.V3_ROUTE, vaccine.route, cat.ROUTES[vaccine.route]),
            "doseQuantity": _qty(vaccine.dose_ml, "мл", "mL"),
            "protocolApplied": [
                {
                    "series": "Национальный календарь профилактических прививок: "
                    + ("ревакцинация" if revacc else "вакцинация"),
                    "targetDisease": [{"text": vaccine.disease}],
                    "doseNumberPositiveInt": dose,
                }
            ],
        }
        if in_maternity:
            immunization["reportOrigin"] = {"text": "Родильный дом (выписка)"}
        else:
            gp, poly = self.gp_on(day)
            immunization["performer"] = [{"actor": self.prac(gp)}]
            immunization["location"] = _ref(f"Location/{poly.location_id}")
        self.add(immunization)

    def ep_certificate(self, day: int, spec: cat.DocumentSpec) -> None:
        minute = self.minute()
        reason = _icd("Z02.7")
        gp, poly = self.gp_on(day)
        enc = self.encounter(day, minute, gp, poly, "visit", reason)
        self.document(day, minute + 15, spec, gp, poly, enc, f"Заключение: {spec.conclusion}")


def _builder(index: int, seed: int, years: int, today: dt.date, **profile: Any) -> _PatientBuilder:
    rng = random.Random(f"medcard-demo-patient:{seed}:{index}")  # noqa: S311  (reproducible)
    return _PatientBuilder(rng, _directory(seed), _pools(seed), today, years, **profile)


def _bundle(entries: list[Resource]) -> Resource:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a card is built.

    A card is a few thousand small acyclic dicts; when callers keep many
    cards in memory, full collections triggered by those allocations
    dominated the run time (5x slower).  Nothing built here forms a cycle.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def patient_bundle(
    index: int, seed: int = 1, years: int = 5, today: dt.date = DEFAULT_TODAY
) -> Resource:
    """The card of patient ``index`` as one ``transaction`` bundle."""
    with _gc_paused():
        builder = _builder(index, seed, years, today)
        builder.make_core()
        core = builder.entries
        builder.entries = []
        episodes = builder.run(builder.plan())
        for episode in episodes:
            core.extend(episode)
        return _bundle(core)


def patient_bundles(
    n: int,
    seed: int = 1,
    years: int = 5,
    start_index: int = 0,
    today: dt.date = DEFAULT_TODAY,
) -> Iterator[Resource]:
    """``n`` patient bundles, patients ``start_index`` … ``start_index + n - 1``.

    Patient *i* does not depend on ``start_index`` or ``n``, so chunks can be
    generated separately (or in parallel) and still add up to one population.
    """
    for index in range(start_index, start_index + n):
        yield patient_bundle(index, seed, years, today)


def patient_bundle_with_resources(
    target: int, seed: int = 1, today: dt.date = DEFAULT_TODAY
) -> Resource:
    """One elderly, multimorbid patient with about ``target`` resources.

    For benchmarks of a large card: the history is made long enough, then the
    most recent episodes are kept until ``target`` is reached (it overshoots by
    at most one episode, a few dozen resources at worst).
    """
    years = max(2, target // 120 + 1)
    while True:
        builder = _builder(
            -1,
            seed,
            years,
            today,
            min_age=72,
            max_age=84,
            chronic_boost=7,
            follow_up_rate=2.5,
        )
        builder.make_core()
        core = builder.entries
        builder.entries = []
        episodes = builder.run(builder.plan())
        total = len(core) + sum(len(e) for e in episodes)
        if total >= target or years >= 60:
            break
        years *= 2
    kept: list[list[Resource]] = []
    count = len(core)
    for episode in reversed(episodes):
        if count >= target:
            break
        kept.append(episode)
        count += len(episode)
    for episode in reversed(kept):
        core.extend(episode)
    return _bundle(core)
