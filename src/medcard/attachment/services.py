"""Attach, detach, move and list attachments, through the caller's repository.

Duplicate detection: the identifiers (SNILS, ENP, passport) find the existing card;
identifiers that belong to two different cards are refused; a person with none of
them on file but the same name and birth date as an existing card is a *possible*
duplicate the registrar must look at and confirm before a second card is made.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from medcard import clock
from medcard import identifiers as ids
from medcard.entries.problems import Collector, FormError
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository, Stored
from medcard.ru_dates import parse_day

EPISODE_KIND_SYSTEM = "https://medcard.example/fhir/CodeSystem/episode-kind"
END_REASON_URL = "https://medcard.example/fhir/StructureDefinition/attachment-end-reason"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
GENDERS = ("male", "female", "other", "unknown")


@dataclass(frozen=True)
class PersonData:
    family: str
    given: str
    middle: str
    birth_date: str
    gender: str
    snils: str = ""
    enp: str = ""
    passport: str = ""
    phone: str = ""
    address: str = ""

    def identifiers(self) -> list[tuple[str, str]]:
        out = []
        if self.snils:
            out.append((ids.SNILS_SYSTEM, self.snils))
        if self.enp:
            out.append((ids.ENP_SYSTEM, self.enp))
        return out

    def resource(self) -> dict[str, Any]:
        def ident(system: str, value: str, code: str, text: str) -> dict[str, Any]:
            return {
                "use": "official",
                "type": {"coding": [{"system": V2_0203, "code": code}], "text": text},
                "system": system,
                "value": value,
            }

        identifiers = []
        if self.snils:
            identifiers.append(ident(ids.SNILS_SYSTEM, self.snils, "SB", "СНИЛС"))
        if self.enp:
            identifiers.append(ident(ids.ENP_SYSTEM, self.enp, "MB", "Полис ОМС (ЕНП)"))
        if self.passport:
            identifiers.append(ids.passport_identifier(self.passport))
        given = [g for g in (self.given, self.middle) if g]
        res: dict[str, Any] = {
            "resourceType": "Patient",
            "identifier": identifiers,
            "active": True,
            "name": [
                {
                    "use": "official",
                    "family": self.family,
                    "given": given,
                    "text": " ".join([self.family, *given]),
                }
            ],
            "gender": self.gender,
            "birthDate": self.birth_date,
        }
        if self.phone:
            res["telecom"] = [{"system": "phone", "value": self.phone, "use": "mobile"}]
        if self.address:
            res["address"] = [{"use": "home", "text": self.address, "country": "RU"}]
        return res


def _name_ok(value: str) -> bool:
    return all(ch.isalpha() or ch in " -'’." for ch in value)


def parse_person(form: dict[str, str], today: dt.date | None = None) -> PersonData:
    """Validate what a registrar typed; every problem at once."""
    today = today or clock.now().date()
    errs = Collector()
    family = " ".join(form.get("family", "").split())
    given = " ".join(form.get("given", "").split())
    middle = " ".join(form.get("middle", "").split())
    for name, value in (("family", family), ("given", given)):
        if not value:
            errs.add(name, "ws_err_required")
        elif not _name_ok(value) or len(value) > 100:
            errs.add(name, "ws_err_name")
    if middle and not _name_ok(middle):
        errs.add("middle", "ws_err_name")
    birth = form.get("birth_date", "").strip()
    try:
        born = parse_day(birth)  # 15.07.1985 as typed, or ISO
        birth = born.isoformat()
        if born > today:
            errs.add("birth_date", "ws_err_future_date")
        elif born.year < today.year - 125:
            errs.add("birth_date", "ws_err_date_too_old")
    except ValueError:
        errs.add("birth_date", "ws_err_date")
    gender = form.get("gender", "")
    if gender not in GENDERS:
        errs.add("gender", "ws_err_choose")
    snils = enp = passport = ""
    if form.get("snils", "").strip():
        try:
            snils = ids.validate_snils(form["snils"])
        except ids.IdentifierError as exc:
            errs.add("snils", "ws_err_snils", detail=str(exc))
    if form.get("enp", "").strip():
        try:
            enp = ids.validate_enp(form["enp"])
        except ids.IdentifierError as exc:
            errs.add("enp", "ws_err_enp", detail=str(exc))
    if form.get("passport", "").strip():
        try:
            passport = ids.validate_passport(form["passport"])
        except ids.IdentifierError as exc:
            errs.add("passport", "ws_err_passport", detail=str(exc))
    if not (snils or enp or passport) and not {"snils", "enp", "passport"} & {
        p.field for p in errs.problems
    }:
        errs.add("snils", "ws_err_need_identifier")
    errs.check()
    return PersonData(
        family,
        given,
        middle,
        birth,
        gender,
        snils,
        enp,
        passport,
        " ".join(form.get("phone", "").split())[:40],
        " ".join(form.get("address", "").split())[:300],
    )


@dataclass
class Matches:
    by_identifier: list[Stored]
    similar: list[Stored]


def _search(repo: Repository, query: list[tuple[str, str]]) -> list[Stored]:
    return repo.search(parse("Patient", [*query, ("_count", "20")])).matches


def find_matches(repo: Repository, person: PersonData) -> Matches:
    found: dict[str, Stored] = {}
    searches = [f"{system}|{value}" for system, value in person.identifiers()]
    if person.passport:
        searches.append(ids.passport_search(person.passport))  # old data's system too
    for token in searches:
        for s in _search(repo, [("identifier", token)]):
            if not _merged_away(s):
                found[s.id] = s
    similar = [
        s
        for s in _search(
            repo,
            [("family:exact", person.family), ("birthdate", person.birth_date)],
        )
        if s.id not in found and not _merged_away(s) and _same_given(s, person)
    ]
    return Matches(list(found.values()), similar)


def _merged_away(stored: Stored) -> bool:
    return any(link.get("type") == "replaced-by" for link in stored.json().get("link") or [])


def _same_given(stored: Stored, person: PersonData) -> bool:
    names = stored.json().get("name") or []
    given = {g.casefold() for n in names for g in n.get("given") or []}
    return person.given.casefold() in given


@dataclass(frozen=True)
class Attachment:
    episode_id: str
    organization: str  # "Organization/x"
    organization_name: str
    start: str
    end: str
    status: str  # active | finished
    practitioner: str
    end_reason: str


@dataclass(frozen=True)
class AttachResult:
    patient_id: str
    created: bool
    moved_from: str  # "Organization/x" when a previous attachment ended
    episode_id: str


def _episodes(repo: Repository, patient_id: str) -> list[Stored]:
    return repo.search(
        parse(
            "EpisodeOfCare",
            [
                ("patient", f"Patient/{patient_id}"),
                ("type", f"{EPISODE_KIND_SYSTEM}|attachment"),
                ("_count", "200"),
            ],
        )
    ).matches


def _as_attachment(stored: Stored) -> Attachment:
    ep = stored.json()
    org = ep.get("managingOrganization") or {}
    reason = next(
        (
            e.get("valueString", "")
            for e in ep.get("extension") or []
            if e.get("url") == END_REASON_URL
        ),
        "",
    )
    period = ep.get("period") or {}
    return Attachment(
        stored.id,
        str(org.get("reference", "")),
        str(org.get("display", "")),
        str(period.get("start", "")),
        str(period.get("end", "")),
        str(ep.get("status", "")),
        str((ep.get("careManager") or {}).get("reference", "")),
        reason,
    )


def history(repo: Repository, patient_id: str) -> list[Attachment]:
    """Every attachment of the person: the current one first, then newest first."""
    items = [_as_attachment(s) for s in _episodes(repo, patient_id)]
    return sorted(items, key=lambda a: (a.status == "active", a.start), reverse=True)


def current_attachment(repo: Repository, patient_id: str) -> Attachment | None:
    return next((a for a in history(repo, patient_id) if a.status == "active"), None)


def _organization(repo: Repository, org_id: str) -> dict[str, Any]:
    try:
        org = repo.read("Organization", org_id).json()
    except FhirError:
        raise FormError.one("organization", "ws_err_unknown_org") from None
    kinds = {c.get("code") for t in org.get("type") or [] for c in t.get("coding") or []}
    if "polyclinic" not in kinds:
        raise FormError.one("organization", "ws_err_not_polyclinic")
    return org


def _end_episodes(repo: Repository, patient_id: str, day: str, reason: str) -> list[str]:
    ended = []
    for stored in _episodes(repo, patient_id):
        ep = stored.json()
        if ep.get("status") != "active":
            continue
        ep["status"] = "finished"
        ep["period"] = {**(ep.get("period") or {}), "end": day}
        ep["statusHistory"] = [
            *(ep.get("statusHistory") or []),
            {"status": "active", "period": {"start": ep["period"].get("start", day), "end": day}},
        ]
        if reason:
            ep["extension"] = [
                *(e for e in ep.get("extension") or [] if e.get("url") != END_REASON_URL),
                {"url": END_REASON_URL, "valueString": reason},
            ]
        repo.update("EpisodeOfCare", stored.id, ep, if_match=stored.etag)
        ended.append(str((ep.get("managingOrganization") or {}).get("reference", "")))
    return ended


def attach(
    repo: Repository,
    organization_id: str,
    *,
    person: PersonData | None = None,
    patient_id: str = "",
    practitioner_id: str = "",
    confirm_new: bool = False,
    today: dt.date | None = None,
) -> AttachResult:
    """Attach an existing card (``patient_id``) or the person's card, found or created.

    One transaction: the Patient (created or updated), the previous attachment ended
    and the new EpisodeOfCare.  A patient already attached here is refused.
    """
    day = (today or clock.now().date()).isoformat()
    with repo.unit_of_work():
        org = _organization(repo, organization_id)
        org_ref = {"reference": f"Organization/{organization_id}", "display": org.get("name", "")}
        created = False
        if patient_id:
            try:
                stored = repo.read("Patient", patient_id)
            except FhirError:
                raise FormError.one("patient", "ws_err_unknown_patient") from None
        else:
            if person is None:
                raise FormError.one("snils", "ws_err_need_identifier")
            matches = find_matches(repo, person)
            if len(matches.by_identifier) > 1:
                raise FormError.one("snils", "ws_err_identifiers_conflict")
            if matches.by_identifier:
                stored = matches.by_identifier[0]
                _check_same_person(stored, person)
            elif matches.similar and not confirm_new:
                raise FormError.one("confirm_new", "ws_err_possible_duplicate")
            else:
                res = person.resource()
                res["managingOrganization"] = org_ref
                if practitioner_id:
                    res["generalPractitioner"] = [{"reference": f"Practitioner/{practitioner_id}"}]
                stored = repo.create(res).stored
                created = True
        patient = stored.json()
        current = (patient.get("managingOrganization") or {}).get("reference")
        active = [
            a
            for a in (_as_attachment(s) for s in _episodes(repo, stored.id))
            if a.status == "active"
        ]
        if not created and any(a.organization == org_ref["reference"] for a in active):
            raise FormError.one("organization", "ws_err_already_attached")
        moved = _end_episodes(repo, stored.id, day, "Прикрепление к другой медицинской организации")
        if not created:
            patient["managingOrganization"] = org_ref
            if practitioner_id:
                patient["generalPractitioner"] = [{"reference": f"Practitioner/{practitioner_id}"}]
            else:
                patient.pop("generalPractitioner", None)
            patient["active"] = True
            repo.update("Patient", stored.id, patient, if_match=stored.etag)
        episode: dict[str, Any] = {
            "resourceType": "EpisodeOfCare",
            "status": "active",
            "type": [
                {
                    "coding": [
                        {
                            "system": EPISODE_KIND_SYSTEM,
                            "code": "attachment",
                            "display": "Прикрепление к медицинской организации",
                        }
                    ],
                    "text": "Прикрепление к медицинской организации",
                }
            ],
            "patient": {"reference": f"Patient/{stored.id}"},
            "managingOrganization": org_ref,
            "period": {"start": day},
        }
        if practitioner_id:
            episode["careManager"] = {"reference": f"Practitioner/{practitioner_id}"}
        ep = repo.create(episode).stored
    moved_from = next((m for m in moved if m and m != current), "") or (moved[0] if moved else "")
    return AttachResult(stored.id, created, moved_from, ep.id)


def _check_same_person(stored: Stored, person: PersonData) -> None:
    """An identifier found a card: refuse when it plainly belongs to someone else."""
    p = stored.json()
    if p.get("birthDate") and p["birthDate"] != person.birth_date:
        raise FormError.one("birth_date", "ws_err_identifier_other_person")


def detach(repo: Repository, patient_id: str, reason: str, *, today: dt.date | None = None) -> None:
    reason = " ".join(reason.split())
    if len(reason) < 3:
        raise FormError.one("reason", "ws_err_reason")
    day = (today or clock.now().date()).isoformat()
    with repo.unit_of_work():
        try:
            stored = repo.read("Patient", patient_id)
        except FhirError:
            raise FormError.one("patient", "ws_err_unknown_patient") from None
        if not _end_episodes(repo, patient_id, day, reason):
            raise FormError.one("patient", "ws_err_not_attached")
        patient = stored.json()
        patient.pop("managingOrganization", None)
        patient.pop("generalPractitioner", None)
        repo.update("Patient", patient_id, patient, if_match=stored.etag)
