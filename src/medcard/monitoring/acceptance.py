"""A clinician accepts a patient's diary reading into the record («Принять в карту»).

The patient's reading (an Observation tagged "entered by patient") is left exactly as
it was.  Accepting it writes, in one transaction through the gate:

* a clinical Observation authored by the clinician: the same code, value, time and
  note, ``performer`` the Practitioner, ``derivedFrom`` the patient's reading, no
  patient tag and no diary identifier (so the diary's retry check never confuses the
  two);
* a ``Provenance`` whose ``target`` is the new Observation (and the Patient, which
  files it in the patient's compartment), ``agent`` the clinician (type ``author``),
  ``activity`` v3 DataOperation ``CREATE`` and ``entity`` the patient's reading with
  role ``source``.

Both writes are audited like any other write of the repository.  Accepting twice
answers with the clinical Observation already made.  A reading nobody accepted stays
patient-entered; the diary shows which were accepted, by whom and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from medcard.access.policy import entered_by_patient
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.monitoring.readings import is_bp, metric_of

DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_AGENT: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
COPIED: Final = ("id", "meta", "identifier", "performer", "derivedFrom", "extension")


class AcceptError(ValueError):
    """Refused acceptance; ``key`` names the page text."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Accepted:
    """A clinical Observation made from a patient's reading."""

    observation_id: str
    source_id: str  # the patient's reading
    by: str  # the clinician's name as recorded
    when: str  # ISO date-time of acceptance


def _source_of(obs: dict[str, Any]) -> str:
    for ref in obs.get("derivedFrom") or []:
        text = str((ref or {}).get("reference", ""))
        if text.startswith("Observation/"):
            return text.split("/")[1]
    return ""


def _name_of(repo: Repository, practitioner_ref: str) -> str:
    try:
        res = repo.read("Practitioner", practitioner_ref.split("/", 1)[1]).json()
    except FhirError:
        return ""
    for name in res.get("name") or []:
        text = name.get("text") or " ".join([name.get("family", ""), *name.get("given", [])])
        if str(text).strip():
            return str(text).strip()
    return ""


def accepted_readings(repo: Repository, patient_id: str) -> dict[str, Accepted]:
    """The patient's readings a clinician accepted, by the reading's id."""
    req = parse(
        "Provenance",
        [("patient", patient_id), ("_count", "1000")],
        max_count=1000,
    )
    out: dict[str, Accepted] = {}
    for stored in repo.search(req).matches:
        prov = stored.json()
        if (prov.get("activity") or {}).get("coding", [{}])[0].get("code") != "CREATE":
            continue
        sources = [
            str(e["what"].get("reference", ""))
            for e in prov.get("entity") or []
            if e.get("role") == "source" and isinstance(e.get("what"), dict)
        ]
        targets = [
            str(t.get("reference", ""))
            for t in prov.get("target") or []
            if str(t.get("reference", "")).startswith("Observation/")
        ]
        if not targets:
            continue
        agent = ((prov.get("agent") or [{}])[0].get("who")) or {}
        for src in sources:
            if src.startswith("Observation/"):
                rid = src.split("/")[1]
                out[rid] = Accepted(
                    targets[0].split("/")[1],
                    rid,
                    str(agent.get("display", "")),
                    str(prov.get("recorded", "")),
                )
    return out


def accept_reading(
    repo: Repository,
    patient_id: str,
    reading_id: str,
    practitioner_ref: str,
    practitioner_name: str,
    now: datetime,
) -> str:
    """The id of the clinical Observation made from the patient's reading."""
    if not practitioner_ref.startswith("Practitioner/"):
        raise AcceptError("diary_accept_not_clinician")
    original = repo.read("Observation", reading_id).json()
    if not entered_by_patient(original) or not (is_bp(original) or metric_of(original)):
        raise AcceptError("diary_accept_not_patient_reading")
    if (original.get("subject") or {}).get("reference") != f"Patient/{patient_id}":
        raise AcceptError("diary_accept_not_patient_reading")
    if original.get("status") == "entered-in-error":
        raise AcceptError("diary_accept_not_patient_reading")
    req = parse(
        "Observation",
        [("patient", patient_id), ("derived-from", f"Observation/{reading_id}")],
    )
    for stored in repo.search(req).matches:
        if not entered_by_patient(stored.json()):
            return stored.id
    stamp = now.isoformat(timespec="seconds")
    who: dict[str, Any] = {"reference": practitioner_ref}
    name = practitioner_name.strip() or _name_of(repo, practitioner_ref)
    if name:
        who["display"] = name
    copy = {k: v for k, v in original.items() if k not in COPIED}
    copy["status"] = "final"
    copy["performer"] = [dict(who)]
    copy["derivedFrom"] = [{"reference": f"Observation/{reading_id}"}]
    copy["issued"] = stamp
    with repo.unit_of_work():
        new_id = repo.create(copy).stored.id
        repo.create(
            {
                "resourceType": "Provenance",
                "target": [
                    {"reference": f"Observation/{new_id}"},
                    {"reference": f"Patient/{patient_id}"},
                ],
                "occurredDateTime": stamp,
                "recorded": stamp,
                "activity": {
                    "coding": [{"system": DATA_OPERATION, "code": "CREATE", "display": "create"}]
                },
                "reason": [{"text": "Показание дневника пациента принято в карту врачом"}],
                "agent": [
                    {
                        "type": {
                            "coding": [
                                {"system": PROVENANCE_AGENT, "code": "author", "display": "Author"}
                            ]
                        },
                        "who": dict(who),
                    }
                ],
                "entity": [{"role": "source", "what": {"reference": f"Observation/{reading_id}"}}],
            }
        )
    return new_id
