"""Reference code tables: how medcard codes what it writes, and what the forms offer.

Production code (entries, workspace, records, billing, onboarding) reads them from here;
the synthetic population (``medcard.demo``) codes its records with the same tables, so
hand-written and generated entries read alike.  The demo world itself (regions,
organisations and their staff) is ``medcard.demo.catalogs``; nothing here imports it.

Display policy: ``Coding.display`` carries the Russian name (the card is
Russian-first, and МКБ-10, НМУ and the НСИ tables are published in Russian);
``CodeableConcept.text`` repeats it, with detail such as a dose.  МКБ-10 names are
exactly those of the НСИ dictionary (``medcard.terminology.nsi``); the generator takes
them from there, and a test checks the ones written below against it.

External code systems and where they come from:

* МКБ-10 — ``http://hl7.org/fhir/sid/icd-10`` (FHIR's URI for ICD-10), codes and names
  of the Russian edition, НСИ 1.2.643.5.1.13.13.11.1005 (docs/oids.md);
* LOINC, UCUM, ATC (``http://www.whocc.no/atc``), CVX, DICOM modality (DCM),
  SNOMED CT — their FHIR-registered URIs;
* НМУ, «Номенклатура медицинских услуг» (приказ Минздрава № 804н) —
  ``urn:oid:1.2.643.5.1.13.13.11.1070``, the НСИ table OID used by СЭМД.

Everything under ``https://medcard.example/fhir/`` is ours; the reference
bundle publishes a CodeSystem for each of those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from medcard import prevention as _prevention

# --- code system URIs --------------------------------------------------------

MEDCARD_FHIR_BASE: Final = "https://medcard.example/fhir"
ORG_KIND_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/organization-kind"
REGION_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/region"
REGION_EXTENSION_URL: Final = f"{MEDCARD_FHIR_BASE}/StructureDefinition/region"
SPECIALTY_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/specialty"
ENCOUNTER_KIND_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/encounter-kind"
DOCUMENT_KIND_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/document-kind"
DOCUMENT_CATEGORY_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/document-category"
HEALTH_GROUP_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/health-group"
OBSERVATION_KIND_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/observation-kind"
VACCINE_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/CodeSystem/vaccine"
REFERRAL_NUMBER_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/sid/referral"
PRESCRIPTION_NUMBER_SYSTEM: Final = f"{MEDCARD_FHIR_BASE}/sid/prescription"

ICD10_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10"
LOINC_SYSTEM: Final = "http://loinc.org"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"
ATC_SYSTEM: Final = "http://www.whocc.no/atc"
CVX_SYSTEM: Final = "http://hl7.org/fhir/sid/cvx"
DICOM_DCM_SYSTEM: Final = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID_SYSTEM: Final = "urn:dicom:uid"
SNOMED_SYSTEM: Final = "http://snomed.info/sct"
NMU_SYSTEM: Final = "urn:oid:1.2.643.5.1.13.13.11.1070"

_THO: Final = "http://terminology.hl7.org/CodeSystem"
V3_ACT_CODE: Final = f"{_THO}/v3-ActCode"
V3_INTERPRETATION: Final = f"{_THO}/v3-ObservationInterpretation"
V3_PARTICIPATION_TYPE: Final = f"{_THO}/v3-ParticipationType"
V3_ROUTE: Final = f"{_THO}/v3-RouteOfAdministration"
V2_0074: Final = f"{_THO}/v2-0074"
V2_0203: Final = f"{_THO}/v2-0203"
OBSERVATION_CATEGORY: Final = f"{_THO}/observation-category"
ORGANIZATION_TYPE: Final = f"{_THO}/organization-type"
CONDITION_CLINICAL: Final = f"{_THO}/condition-clinical"
CONDITION_VERIFICATION: Final = f"{_THO}/condition-ver-status"
CONDITION_CATEGORY: Final = f"{_THO}/condition-category"
ALLERGY_CLINICAL: Final = f"{_THO}/allergyintolerance-clinical"
ALLERGY_VERIFICATION: Final = f"{_THO}/allergyintolerance-verification"
PRACTITIONER_ROLE: Final = f"{_THO}/practitioner-role"
MEDREQ_CATEGORY: Final = f"{_THO}/medicationrequest-category"
DISCHARGE_DISPOSITION: Final = f"{_THO}/discharge-disposition"
LOCATION_PHYSICAL_TYPE: Final = f"{_THO}/location-physical-type"

# --- organisation kinds --------------------------------------------------------

#: medcard kind → (Russian display, HL7 organization-type code, its display)
ORG_KINDS: Final[dict[str, tuple[str, str, str]]] = {
    "polyclinic": ("Поликлиника", "prov", "Healthcare Provider"),
    "hospital": ("Больница (стационар)", "prov", "Healthcare Provider"),
    "lab": ("Клинико-диагностическая лаборатория", "prov", "Healthcare Provider"),
    "imaging": ("Центр лучевой диагностики", "prov", "Healthcare Provider"),
    "ministry": ("Орган управления здравоохранением субъекта РФ", "govt", "Government"),
    "tfoms": ("Территориальный фонд ОМС", "pay", "Payer"),
    "insurer": ("Страховая медицинская организация (СМО)", "ins", "Insurance Company"),
    "watchdog": ("Территориальный орган Росздравнадзора", "govt", "Government"),
    "prosecutor": ("Прокуратура", "govt", "Government"),
}

MEDICAL_KINDS: Final = frozenset({"polyclinic", "hospital", "lab", "imaging"})


# --- specialties -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Specialty:
    """A doctor's specialty and the НМУ codes of a first and a repeat visit to one."""

    code: str
    name: str  # the specialty
    position: str  # the post, as PractitionerRole.code text
    genitive: str  # «врача-…» as used in НМУ titles
    nmu_first: str | None
    nmu_repeat: str | None


SPECIALTIES: Final[dict[str, Specialty]] = {
    s.code: s
    for s in (
        Specialty(
            "therapist",
            "Терапия",
            "врач-терапевт участковый",
            "врача-терапевта",
            "B01.047.001",
            "B01.047.002",
        ),
        Specialty(
            "pediatrician",
            "Педиатрия",
            "врач-педиатр участковый",
            "врача-педиатра",
            "B01.031.001",
            "B01.031.002",
        ),
        Specialty(
            "cardiologist",
            "Кардиология",
            "врач-кардиолог",
            "врача-кардиолога",
            "B01.015.001",
            "B01.015.002",
        ),
        Specialty(
            "endocrinologist",
            "Эндокринология",
            "врач-эндокринолог",
            "врача-эндокринолога",
            "B01.058.001",
            "B01.058.002",
        ),
        Specialty(
            "neurologist",
            "Неврология",
            "врач-невролог",
            "врача-невролога",
            "B01.023.001",
            "B01.023.002",
        ),
        Specialty(
            "ophthalmologist",
            "Офтальмология",
            "врач-офтальмолог",
            "врача-офтальмолога",
            "B01.029.001",
            "B01.029.002",
        ),
        Specialty(
            "surgeon", "Хирургия", "врач-хирург", "врача-хирурга", "B01.057.001", "B01.057.002"
        ),
        Specialty(
            "radiologist", "Рентгенология", "врач-рентгенолог", "врача-рентгенолога", None, None
        ),
        Specialty(
            "lab-doctor",
            "Клиническая лабораторная диагностика",
            "врач клинической лабораторной диагностики",
            "врача клинической лабораторной диагностики",
            None,
            None,
        ),
    )
}


def nmu_visit_display(spec: Specialty, *, first: bool) -> str:
    """НМУ title of a visit, e.g. «Прием (осмотр, консультация) врача-кардиолога первичный»."""
    return f"Прием (осмотр, консультация) {spec.genitive} {'первичный' if first else 'повторный'}"


# --- encounter kinds -------------------------------------------------------------

ENCOUNTER_KINDS: Final[dict[str, str]] = {
    "visit": "Приём (осмотр, консультация) врача",
    "home-visit": "Вызов врача на дом",
    "dispanserization": "Диспансеризация определённых групп взрослого населения",
    "prof-exam": "Профилактический медицинский осмотр",
    "child-prof-exam": "Профилактический медицинский осмотр несовершеннолетнего",
    "diagnostic": "Инструментальное диагностическое исследование",
    "hospitalization": "Госпитализация",
}

# --- health groups ---------------------------------------------------------------

#: Adults' (404н) and minors' (514н, I–V) groups: ``medcard.prevention``.
HEALTH_GROUPS: Final[dict[str, str]] = dict(_prevention.HEALTH_GROUPS)

OBSERVATION_KINDS: Final[dict[str, str]] = {
    "health-group": "Группа здоровья",
    "biochemistry-panel": "Биохимический анализ крови",
}

# --- conditions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    """A diagnosis the generator uses, with the care it usually brings.

    ``prevalence`` is the chance of having the chronic condition in the age
    bands (<18, 18-44, 45-64, 65+); ``weight`` is the relative frequency of an
    acute episode for children and for adults.
    """

    code: str
    ru: str
    chronic: bool
    specialty: str
    prevalence: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    weight: tuple[float, float] = (0.0, 0.0)
    sex: str | None = None
    meds: tuple[str, ...] = ()
    labs: tuple[str, ...] = ()
    imaging: str | None = None
    dispensary: str = "IIIb"  # health group it implies: IIIa (NCD) or IIIb
    hospital_rate: float = 0.0  # yearly chance of a planned hospitalisation


CONDITIONS: Final[tuple[ConditionSpec, ...]] = (
    # chronic non-communicable diseases (dispensary group IIIa)
    ConditionSpec(
        "I10",
        "Эссенциальная [первичная] гипертензия",
        True,
        "cardiologist",
        (0.0, 0.12, 0.40, 0.62),
        meds=("C09AA02", "C08CA01", "C03BA11"),
        labs=("biochem",),
        imaging="echo",
        dispensary="IIIa",
        hospital_rate=0.02,
    ),
    ConditionSpec(
        "I11.9",
        "Гипертензивная [гипертоническая] болезнь с преимущественным поражением сердца без (застойной) сердечной недостаточности",
        True,
        "cardiologist",
        (0.0, 0.02, 0.08, 0.15),
        meds=("C09CA01", "C07AB07"),
        labs=("biochem",),
        imaging="echo",
        dispensary="IIIa",
        hospital_rate=0.03,
    ),
    ConditionSpec(
        "I25.1",
        "Атеросклеротическая болезнь сердца",
        True,
        "cardiologist",
        (0.0, 0.005, 0.06, 0.20),
        meds=("B01AC06", "C10AA05", "C07AB07"),
        labs=("biochem",),
        imaging="echo",
        dispensary="IIIa",
        hospital_rate=0.08,
    ),
    ConditionSpec(
        "I48.9",
        "Фибрилляция и трепетание предсердий неуточненное",
        True,
        "cardiologist",
        (0.0, 0.002, 0.02, 0.08),
        meds=("B01AF02", "C07AB07"),
        labs=("cbc", "biochem"),
        imaging="echo",
        dispensary="IIIa",
        hospital_rate=0.08,
    ),
    ConditionSpec(
        "I50.0",
        "Застойная сердечная недостаточность",
        True,
        "cardiologist",
        (0.0, 0.001, 0.01, 0.06),
        meds=("C03CA01", "C03DA01"),
        labs=("cbc", "biochem"),
        imaging="echo",
        dispensary="IIIa",
        hospital_rate=0.15,
    ),
    ConditionSpec(
        "E11.9",
        "Инсулиннезависимый сахарный диабет без осложнений",
        True,
        "endocrinologist",
        (0.0, 0.015, 0.09, 0.16),
        meds=("A10BA02", "A10BB09"),
        labs=("biochem", "hba1c"),
        dispensary="IIIa",
        hospital_rate=0.03,
    ),
    ConditionSpec(
        "E78.0",
        "Чистая гиперхолестеринемия",
        True,
        "cardiologist",
        (0.0, 0.06, 0.20, 0.25),
        meds=("C10AA07",),
        labs=("biochem",),
        dispensary="IIIa",
    ),
    ConditionSpec(
        "J44.9",
        "Хроническая обструктивная легочная болезнь неуточненная",
        True,
        "therapist",
        (0.0, 0.01, 0.05, 0.10),
        meds=("R03BB04", "R03AC02"),
        labs=("cbc",),
        imaging="ct_chest",
        dispensary="IIIa",
        hospital_rate=0.1,
    ),
    ConditionSpec(
        "J45.0",
        "Астма с преобладанием аллергического компонента",
        True,
        "therapist",
        (0.05, 0.05, 0.05, 0.04),
        meds=("R03BA02", "R03AC02"),
        labs=("cbc",),
        dispensary="IIIa",
        hospital_rate=0.02,
    ),
    # other conditions needing observation (IIIb)
    ConditionSpec(
        "E03.9",
        "Гипотиреоз неуточненный",
        True,
        "endocrinologist",
        (0.002, 0.03, 0.06, 0.07),
        sex="female",
        meds=("H03AA01",),
        imaging="us_thyroid",
    ),
    ConditionSpec(
        "E04.1",
        "Нетоксический одноузловой зоб",
        True,
        "endocrinologist",
        (0.0, 0.02, 0.05, 0.05),
        imaging="us_thyroid",
    ),
    ConditionSpec(
        "E66.0",
        "Ожирение, обусловленное избыточным поступлением энергетических ресурсов",
        True,
        "endocrinologist",
        (0.03, 0.12, 0.22, 0.20),
        labs=("biochem",),
        dispensary="II",
    ),
    ConditionSpec(
        "K29.5",
        "Хронический гастрит неуточненный",
        True,
        "therapist",
        (0.02, 0.08, 0.12, 0.12),
        meds=("A02BC01",),
        labs=("cbc",),
        imaging="us_abdomen",
    ),
    ConditionSpec(
        "K21.9",
        "Гастроэзофагеальный рефлюкс без эзофагита",
        True,
        "therapist",
        (0.01, 0.06, 0.10, 0.10),
        meds=("A02BC01",),
    ),
    ConditionSpec(
        "K80.2",
        "Камни желчного пузыря без холецистита",
        True,
        "surgeon",
        (0.0, 0.02, 0.06, 0.09),
        sex="female",
        labs=("biochem",),
        imaging="us_abdomen",
        hospital_rate=0.05,
    ),
    ConditionSpec(
        "M17.9",
        "Гонартроз неуточненный",
        True,
        "surgeon",
        (0.0, 0.02, 0.12, 0.28),
        meds=("M01AB05", "N02BE01"),
    ),
    ConditionSpec(
        "M42.1",
        "Остеохондроз позвоночника у взрослых",
        True,
        "neurologist",
        (0.0, 0.08, 0.15, 0.15),
        meds=("M01AC06",),
        imaging="mri_brain",
    ),
    ConditionSpec(
        "G43.9",
        "Мигрень неуточненная",
        True,
        "neurologist",
        (0.03, 0.08, 0.05, 0.02),
        sex="female",
        meds=("N02CC01",),
        imaging="mri_brain",
    ),
    ConditionSpec(
        "H40.1",
        "Первичная открытоугольная глаукома",
        True,
        "ophthalmologist",
        (0.0, 0.002, 0.02, 0.07),
        meds=("S01ED01",),
    ),
    ConditionSpec("H52.1", "Миопия", True, "ophthalmologist", (0.15, 0.20, 0.15, 0.10)),
    ConditionSpec(
        "N40",
        "Гиперплазия предстательной железы",
        True,
        "surgeon",
        (0.0, 0.01, 0.15, 0.35),
        sex="male",
        meds=("G04CA02",),
    ),
    ConditionSpec(
        "D50.9",
        "Железодефицитная анемия неуточненная",
        True,
        "therapist",
        (0.03, 0.06, 0.04, 0.05),
        sex="female",
        meds=("B03AA07",),
        labs=("cbc",),
    ),
    ConditionSpec(
        "L20.9",
        "Атопический дерматит неуточненный",
        True,
        "pediatrician",
        (0.08, 0.02, 0.01, 0.0),
        meds=("R06AE07",),
    ),
    ConditionSpec(
        "E55.9",
        "Недостаточность витамина D неуточненная",
        True,
        "endocrinologist",
        (0.05, 0.05, 0.06, 0.10),
        meds=("A11CC05",),
    ),
    # acute episodes
    ConditionSpec(
        "J06.9",
        "Острая инфекция верхних дыхательных путей неуточненная",
        False,
        "therapist",
        weight=(30, 20),
        meds=("N02BE01",),
        labs=("cbc",),
    ),
    ConditionSpec(
        "J00",
        "Острый назофарингит [насморк]",
        False,
        "therapist",
        weight=(15, 6),
        meds=("R01AA05",),
    ),
    ConditionSpec(
        "J02.9",
        "Острый фарингит неуточненный",
        False,
        "therapist",
        weight=(8, 5),
        meds=("N02BE01",),
    ),
    ConditionSpec(
        "J03.9",
        "Острый тонзиллит неуточненный",
        False,
        "therapist",
        weight=(6, 3),
        meds=("J01CA04",),
        labs=("cbc",),
    ),
    ConditionSpec(
        "J20.9",
        "Острый бронхит неуточненный",
        False,
        "therapist",
        weight=(6, 6),
        meds=("R05CB06",),
        labs=("cbc",),
    ),
    ConditionSpec(
        "J18.9",
        "Пневмония неуточненная",
        False,
        "therapist",
        weight=(1, 1.5),
        meds=("J01CR02",),
        labs=("cbc", "biochem"),
        imaging="ct_chest",
        hospital_rate=0.3,
    ),
    ConditionSpec(
        "J11.1",
        "Грипп с другими респираторными проявлениями, вирус не идентифицирован",
        False,
        "therapist",
        weight=(4, 3),
        meds=("J05AH02",),
    ),
    ConditionSpec(
        "U07.1",
        "COVID-19, вирус идентифицирован",
        False,
        "therapist",
        weight=(2, 3),
        meds=("N02BE01",),
        labs=("cbc", "biochem"),
    ),
    ConditionSpec(
        "B34.9",
        "Вирусная инфекция неуточненная",
        False,
        "therapist",
        weight=(6, 2),
        meds=("N02BE01",),
    ),
    ConditionSpec(
        "A09.9",
        "Гастроэнтерит и колит неуточненного происхождения",
        False,
        "therapist",
        weight=(4, 2),
        meds=("A07BA01",),
        labs=("cbc",),
    ),
    ConditionSpec(
        "H66.9", "Средний отит неуточненный", False, "therapist", weight=(4, 0.5), meds=("J01CA04",)
    ),
    ConditionSpec(
        "H10.9",
        "Конъюнктивит неуточненный",
        False,
        "ophthalmologist",
        weight=(3, 1),
        meds=("S01AE05",),
    ),
    ConditionSpec(
        "N30.0",
        "Острый цистит",
        False,
        "therapist",
        weight=(0.5, 3),
        sex="female",
        meds=("J01XX01",),
        labs=("cbc",),
    ),
    ConditionSpec(
        "M54.5", "Боль внизу спины", False, "neurologist", weight=(0.2, 5), meds=("M01AC06",)
    ),
    ConditionSpec(
        "G44.2",
        "Головная боль напряженного типа",
        False,
        "neurologist",
        weight=(1, 2),
        meds=("M01AE01",),
    ),
    ConditionSpec(
        "S93.4",
        "Растяжение и перенапряжение связок голеностопного сустава",
        False,
        "surgeon",
        weight=(1.5, 1),
        meds=("M01AE01",),
    ),
    ConditionSpec(
        "J30.1",
        "Аллергический ринит, вызванный пыльцой растений",
        False,
        "therapist",
        weight=(2, 2),
        meds=("R06AX13",),
    ),
    ConditionSpec(
        "F41.1",
        "Генерализованное тревожное расстройство",
        False,
        "neurologist",
        weight=(0, 0.8),
        meds=("N06AB06",),
    ),
    ConditionSpec("K59.0", "Запор", False, "therapist", weight=(1, 0.8), meds=("A06AD11",)),
)

CONDITION_BY_CODE: Final = {c.code: c for c in CONDITIONS}

#: МКБ-10 codes used now and then for rarer acute visits; their names come from the
#: НСИ dictionary.
LONG_TAIL_ICD10: Final = (
    "J32.9",
    "K76.0",
    "N20.0",
    "I83.9",
    "K64.9",
    "L30.9",
    "M79.1",
    "M75.1",
    "G47.0",
    "H25.9",
    "B00.1",
    "L70.0",
    "B35.1",
    "H61.2",
    "R51",
    "J01.9",
    "K52.9",
    "M25.5",
    "R10.4",
    "K30",
)

# --- medications (ATC) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MedicationSpec:
    """A prescription as a doctor writes it: what, how often, how much, how long."""

    atc: str
    ru: str  # INN with strength and form, shown as the drug
    dose_text: str
    frequency: int  # times per day
    unit: str  # dose unit shown to people («таблетка», «капсула», «доза»)
    quantity: int  # units dispensed
    course_days: int  # 0 = long-term
    route: str = "PO"


MEDICATIONS: Final[dict[str, MedicationSpec]] = {
    m.atc: m
    for m in (
        MedicationSpec(
            "C09AA02",
            "Эналаприл 10 мг, таблетки",
            "По 1 таблетке 2 раза в день",
            2,
            "таблетка",
            60,
            0,
        ),
        MedicationSpec(
            "C09CA01",
            "Лозартан 50 мг, таблетки",
            "По 1 таблетке 1 раз в день",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "C08CA01",
            "Амлодипин 5 мг, таблетки",
            "По 1 таблетке 1 раз в день",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "C03BA11",
            "Индапамид 2,5 мг, таблетки",
            "По 1 таблетке 1 раз в день утром",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "C07AB07",
            "Бисопролол 5 мг, таблетки",
            "По 1 таблетке 1 раз в день",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "B01AC06",
            "Ацетилсалициловая кислота 75 мг, таблетки",
            "По 1 таблетке 1 раз в день после еды",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "B01AF02",
            "Апиксабан 5 мг, таблетки",
            "По 1 таблетке 2 раза в день",
            2,
            "таблетка",
            60,
            0,
        ),
        MedicationSpec(
            "C10AA05",
            "Аторвастатин 20 мг, таблетки",
            "По 1 таблетке 1 раз в день вечером",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "C10AA07",
            "Розувастатин 10 мг, таблетки",
            "По 1 таблетке 1 раз в день вечером",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "C03CA01",
            "Фуросемид 40 мг, таблетки",
            "По 1 таблетке утром натощак",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "C03DA01",
            "Спиронолактон 25 мг, таблетки",
            "По 1 таблетке 1 раз в день",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "A10BA02",
            "Метформин 1000 мг, таблетки",
            "По 1 таблетке 2 раза в день во время еды",
            2,
            "таблетка",
            60,
            0,
        ),
        MedicationSpec(
            "A10BB09",
            "Гликлазид 60 мг, таблетки с модифицированным высвобождением",
            "По 1 таблетке 1 раз в день за завтраком",
            1,
            "таблетка",
            30,
            0,
        ),
        MedicationSpec(
            "R03BB04",
            "Тиотропия бромид 2,5 мкг/доза, раствор для ингаляций",
            "По 2 ингаляции 1 раз в день",
            1,
            "доза",
            60,
            0,
            "RESPINHL",
        ),
        MedicationSpec(
            "R03AC02",
            "Сальбутамол 100 мкг/доза, аэрозоль для ингаляций",
            "По 1–2 ингаляции при приступе, не более 8 в сутки",
            1,
            "доза",
            200,
            0,
            "RESPINHL",
        ),
        MedicationSpec(
            "R03BA02",
            "Будесонид 200 мкг/доза, порошок для ингаляций",
            "По 1 ингаляции 2 раза в день",
            2,
            "доза",
            100,
            0,
            "RESPINHL",
        ),
        MedicationSpec(
            "H03AA01",
            "Левотироксин натрия 50 мкг, таблетки",
            "По 1 таблетке утром натощак за 30 минут до еды",
            1,
            "таблетка",
            50,
            0,
        ),
        MedicationSpec(
            "A02BC01",
            "Омепразол 20 мг, капсулы",
            "По 1 капсуле 2 раза в день до еды",
            2,
            "капсула",
            28,
            14,
        ),
        MedicationSpec(
            "M01AB05",
            "Диклофенак 50 мг, таблетки",
            "По 1 таблетке 2 раза в день после еды",
            2,
            "таблетка",
            20,
            10,
        ),
        MedicationSpec(
            "M01AC06",
            "Мелоксикам 15 мг, таблетки",
            "По 1 таблетке 1 раз в день после еды",
            1,
            "таблетка",
            10,
            10,
        ),
        MedicationSpec(
            "M01AE01",
            "Ибупрофен 400 мг, таблетки",
            "По 1 таблетке при боли, не более 3 раз в день",
            3,
            "таблетка",
            20,
            5,
        ),
        MedicationSpec(
            "N02BE01",
            "Парацетамол 500 мг, таблетки",
            "По 1 таблетке при температуре выше 38,5 °C, не более 4 раз в день",
            4,
            "таблетка",
            20,
            5,
        ),
        MedicationSpec(
            "N02CC01",
            "Суматриптан 50 мг, таблетки",
            "По 1 таблетке при приступе мигрени",
            1,
            "таблетка",
            6,
            0,
        ),
        MedicationSpec(
            "S01ED01",
            "Тимолол 0,5%, капли глазные",
            "По 1 капле в каждый глаз 2 раза в день",
            2,
            "капля",
            1,
            0,
            "OPTHALTA",
        ),
        MedicationSpec(
            "G04CA02",
            "Тамсулозин 0,4 мг, капсулы",
            "По 1 капсуле 1 раз в день после завтрака",
            1,
            "капсула",
            30,
            0,
        ),
        MedicationSpec(
            "B03AA07",
            "Железа сульфат 320 мг, таблетки",
            "По 1 таблетке 1 раз в день",
            1,
            "таблетка",
            30,
            60,
        ),
        MedicationSpec(
            "R06AE07",
            "Цетиризин 10 мг, таблетки",
            "По 1 таблетке 1 раз в день вечером",
            1,
            "таблетка",
            14,
            14,
        ),
        MedicationSpec(
            "R06AX13",
            "Лоратадин 10 мг, таблетки",
            "По 1 таблетке 1 раз в день",
            1,
            "таблетка",
            10,
            10,
        ),
        MedicationSpec(
            "A11CC05",
            "Колекальциферол 2000 МЕ, капсулы",
            "По 1 капсуле 1 раз в день во время еды",
            1,
            "капсула",
            60,
            60,
        ),
        MedicationSpec(
            "R01AA05",
            "Оксиметазолин 0,05%, спрей назальный",
            "По 1 впрыскиванию в каждый носовой ход 2 раза в день, не более 5 дней",
            2,
            "доза",
            1,
            5,
            "NASINHL",
        ),
        MedicationSpec(
            "J01CA04",
            "Амоксициллин 500 мг, капсулы",
            "По 1 капсуле 3 раза в день 7 дней",
            3,
            "капсула",
            21,
            7,
        ),
        MedicationSpec(
            "J01CR02",
            "Амоксициллин + клавулановая кислота 875/125 мг, таблетки",
            "По 1 таблетке 2 раза в день 7 дней",
            2,
            "таблетка",
            14,
            7,
        ),
        MedicationSpec(
            "R05CB06",
            "Амброксол 30 мг, таблетки",
            "По 1 таблетке 3 раза в день 5 дней",
            3,
            "таблетка",
            15,
            5,
        ),
        MedicationSpec(
            "J05AH02",
            "Осельтамивир 75 мг, капсулы",
            "По 1 капсуле 2 раза в день 5 дней",
            2,
            "капсула",
            10,
            5,
        ),
        MedicationSpec(
            "A07BA01",
            "Активированный уголь 250 мг, таблетки",
            "По 4 таблетки 3 раза в день 3 дня",
            3,
            "таблетка",
            40,
            3,
        ),
        MedicationSpec(
            "S01AE05",
            "Левофлоксацин 0,5%, капли глазные",
            "По 1 капле 4 раза в день 7 дней",
            4,
            "капля",
            1,
            7,
            "OPTHALTA",
        ),
        MedicationSpec(
            "J01XX01",
            "Фосфомицин 3 г, гранулы для приготовления раствора",
            "Однократно, 3 г, растворить в 1/3 стакана воды",
            1,
            "пакет",
            1,
            1,
        ),
        MedicationSpec(
            "N06AB06",
            "Сертралин 50 мг, таблетки",
            "По 1 таблетке 1 раз в день",
            1,
            "таблетка",
            30,
            90,
        ),
        MedicationSpec(
            "A06AD11",
            "Лактулоза 667 мг/мл, сироп",
            "По 15 мл 1 раз в день утром",
            1,
            "флакон",
            1,
            14,
        ),
    )
}

ROUTES: Final[dict[str, str]] = {
    "PO": "Swallow, oral",
    "RESPINHL": "Inhalation, respiratory",
    "OPTHALTA": "Instillation, ophthalmic",
    "NASINHL": "Inhalation, nasal",
    "IM": "Injection, intramuscular",
    "SC": "Injection, subcutaneous",
    "IDINJ": "Injection, intradermal",
}

# --- laboratory ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabTest:
    """One analyte: LOINC, UCUM, reference ranges (male, female, child) and spread."""

    loinc: str
    ru: str
    ucum: str
    unit: str  # unit as printed on a Russian lab form
    male: tuple[float, float]
    female: tuple[float, float]
    child: tuple[float, float]
    decimals: int


LAB_TESTS: Final[dict[str, LabTest]] = {
    "hgb": LabTest("718-7", "Гемоглобин", "g/L", "г/л", (130, 160), (120, 140), (110, 140), 0),
    "wbc": LabTest(
        "6690-2", "Лейкоциты", "10*9/L", "×10⁹/л", (4.0, 9.0), (4.0, 9.0), (4.5, 11.0), 1
    ),
    "rbc": LabTest(
        "789-8", "Эритроциты", "10*12/L", "×10¹²/л", (4.0, 5.0), (3.5, 4.7), (3.7, 5.0), 2
    ),
    "plt": LabTest(
        "777-3", "Тромбоциты", "10*9/L", "×10⁹/л", (180, 320), (180, 320), (180, 400), 0
    ),
    "esr": LabTest("30341-2", "СОЭ", "mm/h", "мм/ч", (2, 10), (2, 15), (2, 10), 0),
    "glucose": LabTest(
        "14749-6", "Глюкоза", "mmol/L", "ммоль/л", (3.9, 6.1), (3.9, 6.1), (3.3, 5.5), 1
    ),
    "chol": LabTest(
        "14647-2", "Холестерин общий", "mmol/L", "ммоль/л", (3.0, 5.2), (3.0, 5.2), (3.0, 5.2), 2
    ),
    "creat": LabTest(
        "14682-9", "Креатинин", "umol/L", "мкмоль/л", (62, 115), (53, 97), (27, 62), 0
    ),
    "alt": LabTest(
        "1742-6", "Аланинаминотрансфераза (АЛТ)", "U/L", "Ед/л", (0, 41), (0, 33), (0, 40), 0
    ),
    "ast": LabTest(
        "1920-8", "Аспартатаминотрансфераза (АСТ)", "U/L", "Ед/л", (0, 40), (0, 32), (0, 40), 0
    ),
    "hba1c": LabTest(
        "4548-4",
        "Гликированный гемоглобин (HbA1c)",
        "%",
        "%",
        (4.0, 6.0),
        (4.0, 6.0),
        (4.0, 6.0),
        1,
    ),
}

#: panel key → (code system, code, Russian name, analyte keys)
LAB_PANELS: Final[dict[str, tuple[str, str, str, tuple[str, ...]]]] = {
    "cbc": (
        LOINC_SYSTEM,
        "58410-2",
        "Общий (клинический) анализ крови",
        ("hgb", "wbc", "rbc", "plt", "esr"),
    ),
    "biochem": (
        OBSERVATION_KIND_SYSTEM,
        "biochemistry-panel",
        "Биохимический анализ крови",
        ("glucose", "chol", "creat", "alt", "ast"),
    ),
    "hba1c": (LOINC_SYSTEM, "4548-4", "Гликированный гемоглобин (HbA1c)", ("hba1c",)),
}

#: vital signs measured at a preventive examination: key → (LOINC, Russian, UCUM, unit)
VITALS: Final[dict[str, tuple[str, str, str, str]]] = {
    "bp": ("85354-9", "Артериальное давление", "mm[Hg]", "мм рт. ст."),
    "sbp": ("8480-6", "Систолическое артериальное давление", "mm[Hg]", "мм рт. ст."),
    "dbp": ("8462-4", "Диастолическое артериальное давление", "mm[Hg]", "мм рт. ст."),
    "height": ("8302-2", "Рост", "cm", "см"),
    "weight": ("29463-7", "Масса тела", "kg", "кг"),
    "bmi": ("39156-5", "Индекс массы тела", "kg/m2", "кг/м²"),
}

# --- imaging ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImagingSpec:
    """An imaging examination: DICOM modality, НМУ service, conclusions in Russian."""

    modality: str
    modality_display: str
    nmu: str
    ru: str
    body_part: str
    normal: tuple[str, ...]
    abnormal: tuple[str, ...]
    instances: tuple[int, int]


IMAGING: Final[dict[str, ImagingSpec]] = {
    "ct_chest": ImagingSpec(
        "CT",
        "Computed Tomography",
        "A06.09.005",
        "Компьютерная томография органов грудной полости",
        "органы грудной полости",
        (
            "Очаговых и инфильтративных изменений в лёгких не выявлено. Средостение не расширено."
            " Плевральные полости свободны.",
        ),
        (
            "Участок инфильтрации в нижней доле правого лёгкого (S9–S10). КТ-картина может "
            "соответствовать внебольничной пневмонии.",
            "Единичный очаг в S6 левого лёгкого до 4 мм, вероятно доброкачественный. "
            "Рекомендовано КТ-наблюдение через 12 месяцев.",
            "Эмфизематозные изменения лёгких, утолщение стенок бронхов. Признаки хронического "
            "бронхита.",
        ),
        (180, 420),
    ),
    "us_abdomen": ImagingSpec(
        "US",
        "Ultrasound",
        "A04.16.001",
        "Ультразвуковое исследование органов брюшной полости (комплексное)",
        "органы брюшной полости",
        ("Эхографических признаков патологии органов брюшной полости не выявлено.",),
        (
            "Эхопризнаки диффузных изменений печени по типу жирового гепатоза.",
            "Эхопризнаки конкрементов желчного пузыря (до 8 мм).",
            "Эхопризнаки диффузных изменений поджелудочной железы.",
        ),
        (8, 30),
    ),
    "us_thyroid": ImagingSpec(
        "US",
        "Ultrasound",
        "A04.22.001",
        "Ультразвуковое исследование щитовидной железы и паращитовидных желез",
        "щитовидная железа",
        (
            "Щитовидная железа обычных размеров, эхоструктура однородная, узловых образований "
            "не выявлено.",
        ),
        (
            "Узловое образование правой доли щитовидной железы 9×7 мм, TI-RADS 3. "
            "Рекомендован контроль через 12 месяцев.",
            "Диффузные изменения щитовидной железы по типу аутоиммунного тиреоидита.",
        ),
        (6, 20),
    ),
    "echo": ImagingSpec(
        "US",
        "Ultrasound",
        "A04.10.002",
        "Эхокардиография",
        "сердце",
        (
            "Полости сердца не расширены. Глобальная сократимость миокарда левого желудочка "
            "сохранена, ФВ 62%. Клапанный аппарат без особенностей.",
        ),
        (
            "Гипертрофия миокарда левого желудочка. Диастолическая дисфункция ЛЖ I типа. ФВ 58%.",
            "Дилатация левого предсердия. Снижение глобальной сократимости ЛЖ, ФВ 45%.",
        ),
        (20, 60),
    ),
    "mri_brain": ImagingSpec(
        "MR",
        "Magnetic Resonance",
        "A05.23.009",
        "Магнитно-резонансная томография головного мозга",
        "головной мозг",
        (
            "Очаговых изменений вещества головного мозга не выявлено. Желудочковая система не "
            "расширена.",
        ),
        (
            "Единичные очаги глиоза в белом веществе лобных долей, вероятно сосудистого генеза "
            "(Fazekas 1).",
            "Умеренно выраженная наружная заместительная гидроцефалия.",
        ),
        (150, 400),
    ),
    "fluoro": ImagingSpec(
        "DX",
        "Digital Radiography",
        "A06.09.006",
        "Флюорография легких",
        "органы грудной клетки",
        ("Лёгкие и сердце без видимой патологии.",),
        ("Усиление лёгочного рисунка в прикорневых отделах. Корни структурны.",),
        (1, 1),
    ),
}

# --- immunisation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VaccineSpec:
    """A vaccine: CVX code, the local (national calendar) code, how it is given."""

    key: str
    cvx: str
    ru: str
    disease: str
    route: str
    dose_ml: float


VACCINES: Final[dict[str, VaccineSpec]] = {
    v.key: v
    for v in (
        VaccineSpec(
            "hepb",
            "08",
            "Вакцина против вирусного гепатита B рекомбинантная",
            "Вирусный гепатит B",
            "IM",
            0.5,
        ),
        VaccineSpec(
            "bcg",
            "19",
            "Вакцина туберкулёзная для щадящей первичной иммунизации (БЦЖ-М)",
            "Туберкулёз",
            "IDINJ",
            0.1,
        ),
        VaccineSpec(
            "pcv",
            "133",
            "Вакцина пневмококковая конъюгированная",
            "Пневмококковая инфекция",
            "IM",
            0.5,
        ),
        VaccineSpec(
            "dtp",
            "01",
            "Вакцина коклюшно-дифтерийно-столбнячная адсорбированная (АКДС)",
            "Дифтерия, коклюш, столбняк",
            "IM",
            0.5,
        ),
        VaccineSpec(
            "ipv",
            "10",
            "Вакцина для профилактики полиомиелита инактивированная (ИПВ)",
            "Полиомиелит",
            "IM",
            0.5,
        ),
        VaccineSpec(
            "opv", "02", "Вакцина полиомиелитная пероральная (ОПВ)", "Полиомиелит", "PO", 0.2
        ),
        VaccineSpec(
            "mmr",
            "03",
            "Вакцина против кори, краснухи и эпидемического паротита",
            "Корь, краснуха, эпидемический паротит",
            "SC",
            0.5,
        ),
        VaccineSpec(
            "adsm",
            "139",
            "Анатоксин дифтерийно-столбнячный с уменьшенным содержанием антигенов (АДС-М)",
            "Дифтерия, столбняк",
            "IM",
            0.5,
        ),
        VaccineSpec(
            "flu", "88", "Вакцина для профилактики гриппа инактивированная", "Грипп", "IM", 0.5
        ),
    )
}

#: Национальный календарь профилактических прививок (приказ Минздрава России
#: № 1122н): (vaccine, age in days, dose number in its series, revaccination?).
#: Polio doses 4-6 and ADS-M boosters continue the DTP/IPV series numbering.
NATIONAL_CALENDAR: Final[tuple[tuple[str, int, int, bool], ...]] = (
    ("hepb", 0, 1, False),
    ("bcg", 4, 1, False),
    ("hepb", 30, 2, False),
    ("pcv", 60, 1, False),
    ("dtp", 91, 1, False),
    ("ipv", 91, 1, False),
    ("dtp", 137, 2, False),
    ("ipv", 137, 2, False),
    ("pcv", 137, 2, False),
    ("dtp", 183, 3, False),
    ("opv", 183, 3, False),
    ("hepb", 183, 3, False),
    ("mmr", 365, 1, False),
    ("pcv", 456, 3, True),
    ("dtp", 548, 4, True),
    ("opv", 548, 4, True),
    ("opv", 609, 5, True),
    ("mmr", 2192, 2, True),
    ("adsm", 2400, 5, True),
    ("adsm", 5114, 6, True),
    ("opv", 5114, 6, True),
)

# --- allergies ---------------------------------------------------------------------

#: (category, substance, optional ATC class, typical reaction, criticality)
ALLERGIES: Final[tuple[tuple[str, str, str | None, str, str], ...]] = (
    ("medication", "Пенициллины", "J01CA", "Крапивница", "high"),
    ("medication", "Сульфаниламиды", "J01E", "Кожная сыпь", "low"),
    ("medication", "Нестероидные противовоспалительные препараты", "M01A", "Бронхоспазм", "high"),
    ("medication", "Цефалоспорины", "J01DB", "Крапивница", "low"),
    ("food", "Орехи (арахис)", None, "Отёк Квинке", "high"),
    ("food", "Цитрусовые", None, "Кожный зуд", "low"),
    ("food", "Мёд", None, "Крапивница", "low"),
    ("environment", "Пыльца берёзы", None, "Ринит, конъюнктивит", "low"),
    ("environment", "Домашняя пыль", None, "Ринит", "low"),
    ("environment", "Шерсть кошки", None, "Чихание, слезотечение", "low"),
)

# --- documents ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    """A certificate or report the polyclinic issues."""

    code: str
    ru: str
    category: str  # key of DOCUMENT_CATEGORIES
    loinc: str | None
    valid_days: int  # 0 = no validity period beyond the service
    conclusion: str


DOCUMENT_CATEGORIES: Final[dict[str, str]] = {
    "certificate": "Справка",
    "medical-report": "Медицинское заключение",
    "clinical-note": "Протокол, эпикриз",
}

DOCUMENTS: Final[dict[str, DocumentSpec]] = {
    d.code: d
    for d in (
        DocumentSpec(
            "086u",
            "Медицинская справка (врачебное профессионально-консультативное "
            "заключение), форма № 086/у",
            "certificate",
            None,
            180,
            "Противопоказаний к обучению по избранной специальности не выявлено.",
        ),
        DocumentSpec(
            "079u",
            "Медицинская справка о состоянии здоровья ребёнка, отъезжающего в "
            "организацию отдыха детей и их оздоровления, форма № 079/у",
            "certificate",
            None,
            30,
            "Здоров. Контакта с инфекционными больными не было. "
            "Противопоказаний к пребыванию в организации отдыха нет.",
        ),
        DocumentSpec(
            "pool",
            "Справка о допуске к посещению бассейна",
            "certificate",
            None,
            90,
            "Противопоказаний к посещению бассейна не выявлено.",
        ),
        DocumentSpec(
            "sport",
            "Медицинское заключение о допуске к занятиям физической культурой",
            "medical-report",
            None,
            365,
            "Допущен к занятиям физической культурой в основной группе.",
        ),
        DocumentSpec(
            "driver",
            "Медицинское заключение о наличии (об отсутствии) у водителей "
            "транспортных средств медицинских противопоказаний, форма № 003-В/у",
            "medical-report",
            None,
            3650,
            "Медицинских противопоказаний к управлению транспортными средствами "
            "категорий «В», «В1» не выявлено.",
        ),
        DocumentSpec("consult", "Протокол консультации", "clinical-note", "11488-4", 0, ""),
        DocumentSpec("discharge", "Выписной эпикриз", "clinical-note", "18842-5", 0, ""),
    )
}
