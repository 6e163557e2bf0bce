"""A patient's card: their FHIR resources turned into entries people can read.

:func:`load_card` reads the whole compartment with one ``Patient/$everything`` through
the caller's :class:`~medcard.fhir.store.repository.Repository` (so the gate decides and
the audit records it, exactly as for the API) together with the organisations and
practitioners the entries point to, and builds typed view models.  Nothing here knows
about the web: the portal and the clinician's workspace render the same :class:`Card`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from medcard.access.policy import entered_by_patient
from medcard.audit.reports import human_name
from medcard.fhir.store.repository import Repository
from medcard.records.sections import (
    CARD_TYPES,
    SECTION_BY_KEY,
    SOURCE_TYPES,
    codes,
    entered_in_error,
    is_extract,
    section_of,
)

Resource = dict[str, Any]
MAX_ENTRIES: Final = 50_000
"""More than any real card holds; a bigger compartment is cut, never silently paged."""

ACTIVE_CONDITION: Final = frozenset({"active", "recurrence", "relapse"})
ACTIVE_PRESCRIPTION: Final = frozenset({"active", "on-hold", "draft"})
PENDING_REFERRAL: Final = frozenset({"active", "on-hold", "draft"})
UPCOMING_APPOINTMENT: Final = frozenset({"proposed", "pending", "booked", "waitlist"})
OUT_OF_RANGE: Final = frozenset({"H", "HH", "HU", "L", "LL", "LU", "A", "AA", ">", "<"})


@dataclass(frozen=True, slots=True)
class Attachment:
    """A document's content: inline (``data``) or a ``Binary`` the caller may read."""

    index: int
    content_type: str
    title: str
    data: bytes | None = None
    url: str = ""

    @property
    def filename(self) -> str:
        ext = {
            "application/pdf": "pdf",
            "text/plain": "txt",
            "text/html": "html",
            "image/jpeg": "jpg",
            "image/png": "png",
        }.get(self.content_type.split(";")[0].strip().lower(), "bin")
        return f"document-{self.index + 1}.{ext}"


@dataclass(slots=True)
class Entry:
    """One entry of the card as people see it.

    ``details`` are (label key, value) pairs: labels via :func:`medcard.records.labels.label`,
    values are the record's own words.  ``children`` are parts shown inside the entry
    (a report's results, an examination's measurements); ``listed`` is False for those,
    so sections and the timeline show them only within their parent.
    """

    resource_type: str
    id: str
    section: str
    date: str
    title: str
    status: str = ""
    organization: str = ""
    organization_ref: str = ""
    practitioner: str = ""
    practitioner_ref: str = ""
    summary: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)
    patient_entered: bool = False
    flag: str = ""
    encounter_ref: str = ""
    related: list[tuple[str, str]] = field(default_factory=list)
    children: list[Entry] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    listed: bool = True
    resource: Resource = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.resource_type}/{self.id}"

    @property
    def day(self) -> str:
        return self.date[:10]

    @property
    def out_of_range(self) -> bool:
        return self.flag in OUT_OF_RANGE

    def search_text(self) -> str:
        parts = [self.title, self.summary, self.organization, self.practitioner]
        parts += [v for _, v in self.details]
        parts += [c.title for c in self.children]
        return " ".join(parts).casefold()


@dataclass(frozen=True, slots=True)
class Overview:
    """The first page of a card: who looks after the patient and what matters now."""

    polyclinic: str
    polyclinic_ref: str
    physician: str
    physician_ref: str
    diagnoses: list[Entry]
    allergies: list[Entry]
    recent: list[Entry]
    referrals: list[Entry]
    appointments: list[Entry]
    prescriptions: list[Entry]


@dataclass
class Card:
    """A patient's card; build it with :func:`load_card`."""

    patient_id: str
    patient: Resource
    entries: list[Entry]
    names: dict[str, str]
    today: dt.date
    _by_ref: dict[str, Entry] = field(default_factory=dict)
    _by_encounter: dict[str, list[Entry]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.entries:
            self._index(entry)
        for entry in self.entries:
            if entry.encounter_ref and entry.listed:
                self._by_encounter.setdefault(entry.encounter_ref, []).append(entry)

    def _index(self, entry: Entry) -> None:
        self._by_ref[entry.ref] = entry

    # -- the patient

    @property
    def name(self) -> str:
        return human_name(self.patient)

    @property
    def birth_date(self) -> str:
        return str(self.patient.get("birthDate") or "")

    @property
    def age(self) -> int | None:
        try:
            born = dt.date.fromisoformat(self.birth_date[:10])
        except ValueError:
            return None
        t = self.today
        return t.year - born.year - ((t.month, t.day) < (born.month, born.day))

    # -- entries

    def listed(self) -> list[Entry]:
        """Every top-level entry, newest first (the timeline)."""
        return [e for e in self.entries if e.listed]

    def section(self, key: str) -> list[Entry]:
        """The entries of one section, newest first; KeyError for an unknown section."""
        if key not in SECTION_BY_KEY:
            raise KeyError(key)
        return [e for e in self.entries if e.listed and e.section == key]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for e in self.entries:
            if e.listed:
                out[e.section] += 1
        return dict(out)

    def entry(self, resource_type: str, rid: str) -> Entry | None:
        """Any entry of this card by type and id (children too); None if not in this card."""
        return self._by_ref.get(f"{resource_type}/{rid}")

    def of_encounter(self, encounter_ref: str) -> list[Entry]:
        """Entries recorded during one visit (diagnoses, results, prescriptions, ...)."""
        return self._by_encounter.get(encounter_ref, [])

    def organizations(self) -> list[tuple[str, str]]:
        """(reference, name) of every organisation entries come from, by name."""
        seen = {e.organization_ref: e.organization for e in self.entries if e.organization_ref}
        return sorted(seen.items(), key=lambda kv: kv[1].casefold())

    def overview(self, recent: int = 8) -> Overview:
        gp = [r.get("reference", "") for r in self.patient.get("generalPractitioner") or []]
        physician_ref = next((r for r in gp if r.startswith("Practitioner/")), "")
        org_ref = (self.patient.get("managingOrganization") or {}).get("reference", "")
        org_ref = org_ref or next((r for r in gp if r.startswith("Organization/")), "")
        today = self.today.isoformat()
        listed = self.listed()

        def pick(key: str, keep: Any) -> list[Entry]:
            return [e for e in listed if e.section == key and keep(e)]

        return Overview(
            polyclinic=self.names.get(org_ref, ""),
            polyclinic_ref=org_ref,
            physician=self.names.get(physician_ref, ""),
            physician_ref=physician_ref,
            diagnoses=pick("diagnoses", lambda e: e.status in ACTIVE_CONDITION),
            allergies=pick("allergies", lambda e: e.status in ACTIVE_CONDITION | {""}),
            recent=[
                e
                for e in listed
                if e.section not in ("diagnoses", "allergies") and e.day and e.day <= today
            ][:recent],
            referrals=pick("referrals", lambda e: e.status in PENDING_REFERRAL),
            appointments=pick(
                "visits",
                lambda e: (
                    e.resource_type == "Appointment"
                    and e.status in UPCOMING_APPOINTMENT
                    and e.day >= today
                ),
            ),
            prescriptions=pick("prescriptions", lambda e: e.status in ACTIVE_PRESCRIPTION),
        )


def load_card(repo: Repository, patient_id: str, today: dt.date | None = None) -> Card:
    """Read a patient's card through ``repo`` (gated and audited as one ``$everything``).

    Raises the repository's ``FhirError`` (404) for a patient the caller may not see or
    that does not exist; the two look the same.
    """
    stored, _total = repo.everything(
        patient_id, types=["Patient", *CARD_TYPES, *SOURCE_TYPES], count=MAX_ENTRIES
    )
    with _gc_paused():
        patient: Resource = {}
        clinical: list[Resource] = []
        shared: list[Resource] = []
        for s in stored:
            res = orjson.loads(s.content)
            if s.resource_type == "Patient":
                patient = res
            elif s.resource_type in SOURCE_TYPES:
                shared.append(res)
            else:
                clinical.append(res)
        return build_card(patient_id, patient, clinical, shared, today)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """A card is thousands of small dicts made at once; the cyclic collector would
    walk them repeatedly while they are being built (they hold no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_card(
    patient_id: str,
    patient: Resource,
    clinical: Iterable[Resource],
    shared: Iterable[Resource] = (),
    today: dt.date | None = None,
) -> Card:
    """The card from resources already read (tests, bulk tools)."""
    names = _names(shared)
    locations = {
        f"Location/{r['id']}": (r.get("managingOrganization") or {}).get("reference", "")
        for r in shared
        if r.get("resourceType") == "Location"
    }
    kept = [r for r in clinical if not entered_in_error(r) and not is_extract(r)]
    builder = _Builder(names, locations, kept)
    entries = builder.build()
    entries.sort(key=lambda e: (e.date, e.ref), reverse=True)
    return Card(patient_id, patient, entries, names, today or dt.date.today())  # noqa: DTZ011


# -- names of sources ------------------------------------------------------------------


def _names(shared: Iterable[Resource]) -> dict[str, str]:
    names: dict[str, str] = {}
    roles: list[Resource] = []
    for r in shared:
        ref = f"{r.get('resourceType')}/{r.get('id')}"
        if r.get("resourceType") == "Practitioner":
            names[ref] = _short_name(r)
        elif r.get("resourceType") == "PractitionerRole":
            roles.append(r)
        else:
            names[ref] = str(r.get("name") or "")
    for r in roles:
        who = (r.get("practitioner") or {}).get("reference", "")
        names[f"PractitionerRole/{r.get('id')}"] = names.get(who, "") or display(r.get("code"))
    return names


def _short_name(practitioner: Resource) -> str:
    """«Иванов И. И.»: how a doctor is named on documents."""
    names = practitioner.get("name") or []
    if not names:
        return ""
    n = next((x for x in names if x.get("use") == "official"), names[0])
    if n.get("text") and not n.get("family"):
        return str(n["text"])
    initials = " ".join(f"{g[0]}." for g in n.get("given") or [] if g)
    return f"{n.get('family', '')} {initials}".strip()


# -- reading FHIR datatypes --------------------------------------------------------------


def display(concept: Any) -> str:
    """What to show for a CodeableConcept: its text, else the first display, else a code."""
    if isinstance(concept, list):
        return ", ".join(x for x in (display(c) for c in concept) if x)
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if coding.get("display"):
            return str(coding["display"])
    for coding in concept.get("coding") or ():
        if coding.get("code"):
            return str(coding["code"])
    return ""


def coding_code(concept: Any, system_hint: str = "") -> str:
    if not isinstance(concept, dict):
        return ""
    for coding in concept.get("coding") or ():
        if system_hint and system_hint not in str(coding.get("system", "")):
            continue
        if coding.get("code"):
            return str(coding["code"])
    return ""


def ref_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("reference") or "")
    return ""


def quantity(q: Any) -> str:
    if not isinstance(q, dict) or q.get("value") is None:
        return ""
    value = q["value"]
    text = f"{value:g}" if isinstance(value, float) else str(value)
    unit = q.get("unit") or q.get("code") or ""
    return f"{text} {unit}".strip()


def period_text(p: Any) -> str:
    if not isinstance(p, dict):
        return ""
    start, end = day_of(p.get("start")), day_of(p.get("end"))
    if start and end and start != end:
        return f"{ru_date(start)} — {ru_date(end)}"
    return ru_date(start or end)


def day_of(value: Any) -> str:
    return str(value)[:10] if isinstance(value, str) else ""


def ru_date(iso: str) -> str:
    """«31.12.2024» from an ISO date or dateTime (a partial date stays as it is)."""
    day = iso[:10]
    if len(day) == 10 and day[4] == "-" and day[7] == "-":
        return f"{day[8:10]}.{day[5:7]}.{day[:4]}"
    return day


def range_text(ranges: Any) -> str:
    if not isinstance(ranges, list) or not ranges:
        return ""
    r = ranges[0]
    if r.get("text"):
        return str(r["text"])
    low, high = r.get("low") or {}, r.get("high") or {}
    unit = high.get("unit") or low.get("unit") or ""
    lo, hi = low.get("value"), high.get("value")
    if lo is not None and hi is not None:
        return f"{lo:g} – {hi:g} {unit}".strip()
    if hi is not None:
        return f"≤ {hi:g} {unit}".strip()
    if lo is not None:
        return f"≥ {lo:g} {unit}".strip()
    return ""


def observation_value(obs: Mapping[str, Any]) -> str:
    if "valueQuantity" in obs:
        return quantity(obs["valueQuantity"])
    if "valueCodeableConcept" in obs:
        return display(obs["valueCodeableConcept"])
    for key in ("valueString", "valueInteger", "valueBoolean", "valueDateTime"):
        if key in obs:
            return str(obs[key])
    parts = obs.get("component") or []
    if parts:  # blood pressure: 120/80 mm[Hg]
        values = [(c.get("valueQuantity") or {}) for c in parts]
        nums = [v.get("value") for v in values if v.get("value") is not None]
        unit = next((v.get("unit") for v in values if v.get("unit")), "")
        if len(nums) == len(parts):
            return "/".join(f"{n:g}" if isinstance(n, float) else str(n) for n in nums) + (
                f" {unit}" if unit else ""
            )
    return ""


def observation_flag(obs: Mapping[str, Any]) -> str:
    """H, L, A... from the interpretation, else from comparing with the reference range."""
    interp = codes(obs.get("interpretation"))
    for code in ("HH", "LL", "AA", "H", "L", "A", "HU", "LU", ">", "<", "N"):
        if code in interp:
            return code
    value = (obs.get("valueQuantity") or {}).get("value")
    ranges = obs.get("referenceRange") or []
    if not isinstance(value, int | float) or not ranges:
        return ""
    low = (ranges[0].get("low") or {}).get("value")
    high = (ranges[0].get("high") or {}).get("value")
    if isinstance(high, int | float) and value > high:
        return "H"
    if isinstance(low, int | float) and value < low:
        return "L"
    return "N"


def _attachments(res: Mapping[str, Any]) -> list[Attachment]:
    out = []
    for i, content in enumerate(res.get("content") or []):
        att = content.get("attachment") or {}
        data: bytes | None = None
        if att.get("data"):
            try:
                data = base64.b64decode(att["data"], validate=True)
            except (binascii.Error, ValueError):
                data = None
        out.append(
            Attachment(
                i,
                str(att.get("contentType") or "application/octet-stream"),
                str(att.get("title") or ""),
                data,
                str(att.get("url") or ""),
            )
        )
    return out


def document_text(attachment: Attachment) -> str:
    """Plain-text documents are shown on the page as well as offered for download."""
    if attachment.data is None or not attachment.content_type.startswith("text/plain"):
        return ""
    return attachment.data.decode("utf-8", errors="replace")


# -- building entries ----------------------------------------------------------------------


class _Builder:
    def __init__(
        self, names: dict[str, str], locations: dict[str, str], resources: list[Resource]
    ) -> None:
        self.names = names
        self.locations = locations
        self.resources = resources
        self.encounters = {
            f"Encounter/{r.get('id')}": r for r in resources if r.get("resourceType") == "Encounter"
        }
        self.conditions = {
            f"Condition/{r.get('id')}": r for r in resources if r.get("resourceType") == "Condition"
        }

    def name(self, reference: Any) -> str:
        ref = ref_of(reference)
        return self.names.get(ref) or (
            str(reference.get("display") or "") if isinstance(reference, dict) else ""
        )

    def encounter_org(self, enc_ref: str) -> Any:
        enc = self.encounters.get(enc_ref)
        return (enc or {}).get("serviceProvider")

    def build(self) -> list[Entry]:
        entries: dict[str, Entry] = {}
        for res in self.resources:
            method = getattr(self, f"_{res.get('resourceType', '')}", None)
            if method is None or not res.get("id"):
                continue
            entry: Entry = method(res)
            entry.patient_entered = entered_by_patient(res)
            entry.resource = res
            entries[entry.ref] = entry
        self._nest(entries)
        return list(entries.values())

    def _nest(self, entries: dict[str, Entry]) -> None:
        """Results inside their report, studies inside theirs, measurements in the check-up."""
        for entry in entries.values():
            res = entry.resource
            if entry.resource_type == "DiagnosticReport":
                for link in [*(res.get("result") or []), *(res.get("imagingStudy") or [])]:
                    child = entries.get(ref_of(link))
                    if child is not None and child is not entry:
                        child.listed = False
                        entry.children.append(child)
                        if not entry.flag and child.out_of_range:
                            entry.flag = "A"
        measured: dict[str, list[Entry]] = {}
        for other in entries.values():
            if (
                other.resource_type == "Observation"
                and other.listed
                and other.encounter_ref
                and other.section in ("exams", "measurements")
            ):
                measured.setdefault(other.encounter_ref, []).append(other)
        for entry in entries.values():
            if entry.resource_type == "Encounter" and entry.section == "exams":
                for other in measured.get(entry.ref, ()):
                    other.listed = False
                    entry.children.append(other)
                    if other.details and other.details[0][0] == "health_group":
                        entry.details.append(other.details[0])
                        entry.summary = other.details[0][1]
        for entry in entries.values():
            entry.children.sort(key=lambda c: (c.date, c.title))

    def _entry(
        self,
        res: Resource,
        date: Any,
        title: str,
        *,
        org: Any = None,
        prac: Any = None,
        status: str = "",
        encounter: Any = None,
    ) -> Entry:
        enc_ref = ref_of(encounter)
        if org is None and enc_ref:
            org = self.encounter_org(enc_ref)
        if org is None and ref_of(res.get("location")) in self.locations:
            org = {"reference": self.locations[ref_of(res.get("location"))]}
        org_ref = ref_of(org)
        if org_ref.startswith("Location/"):
            org_ref = self.locations.get(org_ref, "")
            org = {"reference": org_ref}
        prac_ref = ref_of(prac)
        return Entry(
            resource_type=str(res["resourceType"]),
            id=str(res["id"]),
            section=section_of(res),
            date=str(date or ""),
            title=title or str(res["resourceType"]),
            status=status or str(res.get("status") or ""),
            organization=self.name(org) if org else "",
            organization_ref=org_ref if org_ref.startswith("Organization/") else "",
            practitioner=self.name(prac) if prac else "",
            practitioner_ref=prac_ref,
            encounter_ref=enc_ref,
        )

    # one method per resource type ------------------------------------------------------

    def _Encounter(self, res: Resource) -> Entry:  # noqa: N802 - named after the FHIR type
        attender = next(
            (p.get("individual") for p in res.get("participant") or [] if p.get("individual")),
            None,
        )
        period = res.get("period") or {}
        e = self._entry(
            res,
            period.get("start"),
            display(res.get("type")) or display(res.get("serviceType")),
            org=res.get("serviceProvider"),
            prac=attender,
        )
        e.summary = display(res.get("reasonCode"))
        e.details += [("kind", display(res.get("type"))), ("period", period_text(period))]
        if res.get("serviceType"):
            e.details.append(("type", display(res.get("serviceType"))))
        if e.summary:
            e.details.append(("reason", e.summary))
        diagnoses = []
        for d in res.get("diagnosis") or []:
            cond = self.conditions.get(ref_of(d.get("condition")))
            if cond is not None and not entered_in_error(cond):
                diagnoses.append(_coded(cond.get("code")))
        if diagnoses:
            e.details.append(("diagnosis", "; ".join(diagnoses)))
        for loc in res.get("location") or []:
            name = self.name(loc.get("location"))
            if name:
                e.details.append(("location", name))
        return e

    def _Appointment(self, res: Resource) -> Entry:  # noqa: N802
        actors = [p.get("actor") for p in res.get("participant") or [] if p.get("actor")]
        prac = next((a for a in actors if ref_of(a).startswith("Practitioner")), None)
        org = next((a for a in actors if ref_of(a).startswith(("Organization", "Location"))), None)
        e = self._entry(
            res,
            res.get("start"),
            display(res.get("serviceType")) or str(res.get("description") or ""),
            org=org,
            prac=prac,
        )
        e.summary = str(res.get("description") or "")
        e.details.append(("date", ru_date(day_of(res.get("start")))))
        return e

    def _Condition(self, res: Resource) -> Entry:  # noqa: N802
        clinical = coding_code(res.get("clinicalStatus"))
        e = self._entry(
            res,
            res.get("recordedDate") or res.get("onsetDateTime"),
            display(res.get("code")),
            prac=res.get("recorder") or res.get("asserter"),
            status=clinical,
            encounter=res.get("encounter"),
        )
        code = coding_code(res.get("code"), "icd-10")
        e.summary = code
        e.details += [("diagnosis", display(res.get("code")))]
        if code:
            e.details.append(("code", f"МКБ-10 {code}"))
        if res.get("onsetDateTime"):
            e.details.append(("onset", ru_date(day_of(res["onsetDateTime"]))))
        if res.get("abatementDateTime"):
            e.details.append(("abatement", ru_date(day_of(res["abatementDateTime"]))))
        verification = coding_code(res.get("verificationStatus"))
        if verification:
            e.details.append(("verification", f"status_{verification}"))
        e.details += [("note", n.get("text", "")) for n in res.get("note") or [] if n.get("text")]
        return e

    def _AllergyIntolerance(self, res: Resource) -> Entry:  # noqa: N802
        e = self._entry(
            res,
            res.get("recordedDate") or res.get("onsetDateTime"),
            display(res.get("code")),
            prac=res.get("recorder") or res.get("asserter"),
            status=coding_code(res.get("clinicalStatus")),
            encounter=res.get("encounter"),
        )
        reactions = [
            display(m) for r in res.get("reaction") or [] for m in r.get("manifestation") or []
        ]
        e.summary = ", ".join(x for x in reactions if x)
        for category in res.get("category") or []:
            e.details.append(("category", f"allergy_{category}"))
        if res.get("criticality"):
            e.details.append(("criticality", f"criticality_{res['criticality']}"))
        if e.summary:
            e.details.append(("reaction", e.summary))
        if res.get("criticality") == "high":
            e.flag = "AA"
        return e

    def _Observation(self, res: Resource) -> Entry:  # noqa: N802
        performers = res.get("performer") or []
        org = next((p for p in performers if ref_of(p).startswith("Organization/")), None)
        prac = next((p for p in performers if ref_of(p).startswith("Practitioner")), None)
        e = self._entry(
            res,
            res.get("effectiveDateTime")
            or (res.get("effectivePeriod") or {}).get("start")
            or res.get("issued"),
            display(res.get("code")),
            org=org,
            prac=prac,
            encounter=res.get("encounter"),
        )
        value = observation_value(res)
        e.flag = observation_flag(res)
        e.summary = value
        if coding_code(res.get("code")) == "health-group":
            e.details.append(("health_group", value))
        else:
            e.details.append(("value", value))
        rng = range_text(res.get("referenceRange"))
        if rng:
            e.details.append(("reference_range", rng))
        if e.flag:
            e.details.append(("interpretation", f"flag_{e.flag}"))
        e.details += [("note", n.get("text", "")) for n in res.get("note") or [] if n.get("text")]
        for based in res.get("basedOn") or []:
            e.related.append(("requester", ref_of(based)))
        return e

    def _DiagnosticReport(self, res: Resource) -> Entry:  # noqa: N802
        performers = res.get("performer") or []
        org = next((p for p in performers if ref_of(p).startswith("Organization/")), None)
        interp = res.get("resultsInterpreter") or []
        prac = interp[0] if interp else None
        e = self._entry(
            res,
            res.get("effectiveDateTime")
            or (res.get("effectivePeriod") or {}).get("start")
            or res.get("issued"),
            display(res.get("code")),
            org=org,
            prac=prac,
            encounter=res.get("encounter"),
        )
        if res.get("conclusion"):
            e.summary = str(res["conclusion"])
            e.details.append(("conclusion", e.summary))
        elif res.get("conclusionCode"):
            e.summary = display(res["conclusionCode"])
            e.details.append(("conclusion", e.summary))
        if res.get("issued"):
            e.details.append(("date", ru_date(day_of(res["issued"]))))
        for based in res.get("basedOn") or []:
            e.related.append(("requester", ref_of(based)))
        e.attachments = _attachments(
            {"content": [{"attachment": a} for a in res.get("presentedForm") or []]}
        )
        return e

    def _ImagingStudy(self, res: Resource) -> Entry:  # noqa: N802
        interp = res.get("interpreter") or []
        e = self._entry(
            res,
            res.get("started"),
            str(res.get("description") or "") or display(res.get("procedureCode")),
            prac=interp[0] if interp else res.get("referrer"),
            encounter=res.get("encounter"),
        )
        modalities = [m.get("display") or m.get("code", "") for m in res.get("modality") or []]
        e.details.append(("modality", ", ".join(modalities)))
        sites = [s.get("description") for s in res.get("series") or [] if s.get("description")]
        if sites:
            e.details.append(("body_site", ", ".join(sites)))
        if res.get("numberOfInstances"):
            e.details.append(("instances", str(res["numberOfInstances"])))
        e.summary = ", ".join(modalities)
        return e

    def _Composition(self, res: Resource) -> Entry:  # noqa: N802
        authors = res.get("author") or []
        e = self._entry(
            res,
            res.get("date"),
            str(res.get("title") or "") or display(res.get("type")),
            org=res.get("custodian"),
            prac=authors[0] if authors else None,
            encounter=res.get("encounter"),
        )
        for s in res.get("section") or []:
            text = _narrative(s.get("text"))
            if text:
                e.details.append((str(s.get("title") or "text"), text))
        e.summary = next((v for _, v in e.details), "")
        return e

    def _DocumentReference(self, res: Resource) -> Entry:  # noqa: N802
        authors = res.get("author") or []
        context = res.get("context") or {}
        encounters = context.get("encounter") or []
        e = self._entry(
            res,
            res.get("date") or (context.get("period") or {}).get("start"),
            display(res.get("type")) or str(res.get("description") or ""),
            org=res.get("custodian"),
            prac=next((a for a in authors if ref_of(a).startswith("Practitioner")), None),
            encounter=encounters[0] if encounters else None,
        )
        if not e.organization:
            org = next((a for a in authors if ref_of(a).startswith("Organization/")), None)
            if org is not None:
                e.organization, e.organization_ref = self.name(org), ref_of(org)
        e.attachments = _attachments(res)
        period = context.get("period") or {}
        if period.get("end") and period.get("end") != period.get("start"):
            e.details.append(("validity", period_text(period)))
        if res.get("description") and res.get("description") != e.title:
            e.details.append(("description", str(res["description"])))
        for att in e.attachments:
            text = document_text(att)
            if text:
                e.summary = e.summary or text.splitlines()[-1][:200]
        return e

    def _Immunization(self, res: Resource) -> Entry:  # noqa: N802
        performers = [p.get("actor") for p in res.get("performer") or [] if p.get("actor")]
        prac = next((a for a in performers if ref_of(a).startswith("Practitioner")), None)
        org = next((a for a in performers if ref_of(a).startswith("Organization/")), None)
        e = self._entry(
            res,
            res.get("occurrenceDateTime") or res.get("recorded"),
            display(res.get("vaccineCode")),
            org=org,
            prac=prac,
            encounter=res.get("encounter"),
        )
        for p in res.get("protocolApplied") or []:
            dose = p.get("doseNumberPositiveInt") or p.get("doseNumberString")
            if dose:
                e.details.append(("dose_number", str(dose)))
            if p.get("series"):
                e.details.append(("series", str(p["series"])))
            diseases = display(p.get("targetDisease") or [])
            if diseases:
                e.details.append(("target_disease", diseases))
                e.summary = diseases
        if res.get("lotNumber"):
            e.details.append(("lot", str(res["lotNumber"])))
        if res.get("route"):
            e.details.append(("route", display(res["route"])))
        if res.get("reportOrigin"):
            e.details.append(("origin", display(res["reportOrigin"])))
        return e

    def _ServiceRequest(self, res: Resource) -> Entry:  # noqa: N802
        performers = res.get("performer") or []
        e = self._entry(
            res,
            res.get("authoredOn") or res.get("occurrenceDateTime"),
            display(res.get("code")),
            prac=res.get("requester"),
            encounter=res.get("encounter"),
        )
        number = next((i.get("value") for i in res.get("identifier") or []), None)
        if number:
            e.details.append(("number", str(number)))
        e.details.append(("category", display(res.get("category") or [])))
        target = ", ".join(self.name(p) for p in performers if self.name(p))
        if target:
            e.details.append(("performer", target))
            e.summary = target
        if res.get("priority"):
            e.details.append(("priority", f"priority_{res['priority']}"))
        reason = display(res.get("reasonCode") or [])
        if reason:
            e.details.append(("reason", reason))
        return e

    def _MedicationRequest(self, res: Resource) -> Entry:  # noqa: N802
        e = self._entry(
            res,
            res.get("authoredOn"),
            display(res.get("medicationCodeableConcept"))
            or self.name(res.get("medicationReference")),
            prac=res.get("requester"),
            encounter=res.get("encounter"),
        )
        dosage = "; ".join(
            str(d.get("text")) for d in res.get("dosageInstruction") or [] if d.get("text")
        )
        e.summary = dosage
        number = next((i.get("value") for i in res.get("identifier") or []), None)
        if number:
            e.details.append(("number", str(number)))
        if dosage:
            e.details.append(("dosage", dosage))
        dispense = res.get("dispenseRequest") or {}
        if dispense.get("validityPeriod"):
            e.details.append(("validity", period_text(dispense["validityPeriod"])))
        if dispense.get("quantity"):
            e.details.append(("quantity", quantity(dispense["quantity"])))
        reason = display(res.get("reasonCode") or [])
        if reason:
            e.details.append(("reason", reason))
        return e


def _coded(concept: Any) -> str:
    code = coding_code(concept, "icd-10")
    text = display(concept)
    return f"{code} {text}".strip() if code and code != text else text


def _narrative(text: Any) -> str:
    """Plain text of an XHTML narrative (tags dropped; the page escapes the rest)."""
    if not isinstance(text, dict) or not isinstance(text.get("div"), str):
        return ""
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text["div"])).strip()
