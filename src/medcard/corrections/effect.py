"""The effect of an accepted report: invalid entries leave the card, visibly and on record.

Nothing is edited in place: each invalid entry gets a new version with the status
``entered-in-error`` (the store then hides it from every view but an auditor's), a
lab report takes its results along, one ``Provenance`` says who decided, on which
report and why, and the author organisation gets a ``Communication``.  Where the entry
is another person's data, the authority may order it copied to the right patient's
card (a new resource, with its own Provenance pointing at the withdrawn original) or
its content purged (the store's one in-place change, leaving the audit fact).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from medcard import clock
from medcard.corrections.model import (
    ACCOUNT_SYSTEM,
    COMMUNICATION_SYSTEM,
    Report,
    concept,
    instant,
    ref_id,
)
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository

CONDITION_VER: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_VER: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_AGENT: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
# Fields naming who made an entry, looked through to find its author organisation.
AUTHOR_FIELDS: Final = (
    "performer",
    "recorder",
    "asserter",
    "requester",
    "author",
    "custodian",
    "serviceProvider",
    "participant",
    "resultsInterpreter",
    "location",
    "encounter",
)


def withdrawn(resource: dict[str, Any]) -> dict[str, Any]:
    """The next version of an entry: the same content, marked entered-in-error (R4)."""
    out = copy.deepcopy(resource)  # meta (security labels, tags) carries over; the store
    rtype = out["resourceType"]  # stamps the new versionId and lastUpdated
    if rtype in ("Condition", "AllergyIntolerance"):
        # con-5 / ait-2: no clinicalStatus once the verification says entered-in-error
        out.pop("clinicalStatus", None)
        system = CONDITION_VER if rtype == "Condition" else ALLERGY_VER
        out["verificationStatus"] = concept(system, "entered-in-error", "Entered in Error")
    else:
        out["status"] = "entered-in-error"
    return out


def cascade(repo: Repository, ref: str) -> list[str]:
    """What goes with an entry: a lab or imaging report's results."""
    rtype, rid = ref.split("/", 1)
    if rtype != "DiagnosticReport":
        return []
    try:
        res = repo.read(rtype, rid).json()
    except FhirError:
        return []
    return [
        str(r["reference"])
        for r in res.get("result") or []
        if isinstance(r, dict) and str(r.get("reference", "")).startswith("Observation/")
    ]


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        out = [str(value["reference"])] if isinstance(value.get("reference"), str) else []
        for v in value.values():
            out.extend(_refs(v))
        return out
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def authors(
    repo: Repository, resource: dict[str, Any], fallback_org: str
) -> tuple[set[str], set[str]]:
    """(Organization refs, Practitioner refs) who made an entry."""
    refs = [r for f in AUTHOR_FIELDS for r in _refs(resource.get(f))]
    orgs = {r for r in refs if r.startswith("Organization/")}
    pracs = {r for r in refs if r.startswith("Practitioner/")}
    for r in refs:
        kind, _, rid = r.partition("/")
        if kind not in ("Location", "Encounter", "PractitionerRole"):
            continue
        try:
            res = repo.read(kind, rid).json()
        except FhirError:
            continue
        for key in ("managingOrganization", "serviceProvider", "organization"):
            ref = str((res.get(key) or {}).get("reference", ""))
            if ref.startswith("Organization/"):
                orgs.add(ref)
        prac = str((res.get("practitioner") or {}).get("reference", ""))
        if prac.startswith("Practitioner/"):
            pracs.add(prac)
    if not orgs:
        for prac in sorted(pracs):
            roles = repo.search(
                parse("PractitionerRole", [("practitioner", prac), ("_count", "5")])
            )
            for role in roles.matches:
                ref = str((role.json().get("organization") or {}).get("reference", ""))
                if ref.startswith("Organization/"):
                    orgs.add(ref)
    if not orgs and fallback_org:
        orgs.add(fallback_org)
    return orgs, pracs


@dataclass
class Outcome:
    provenance: str = ""
    withdrawn: dict[str, int] = field(default_factory=dict)  # ref -> new version
    moved: dict[str, str] = field(default_factory=dict)  # old ref -> new ref
    purged: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)  # Communication refs


def _moved_copy(
    resource: dict[str, Any], old_pid: str, new_pid: str, mapping: dict[str, str]
) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    for key in ("id", "meta", "encounter", "context", "basedOn", "partOf"):
        out.pop(key, None)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            ref = v.get("reference")
            if ref == f"Patient/{old_pid}":
                return {"reference": f"Patient/{new_pid}"}
            if isinstance(ref, str) and ref in mapping:
                return {**v, "reference": mapping[ref]}
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    moved: dict[str, Any] = walk(out)
    return moved


def apply(
    repo: Repository,
    report: Report,
    invalid: list[str],
    *,
    reason: str,
    authority_name: str,
    reviewer_name: str,
    moves: dict[str, str],
    purges: set[str],
    fallback_org: str,
) -> Outcome:
    """Withdraw ``invalid`` (and what goes with them), inside ``repo``'s unit of work.

    ``moves``: entry ref -> the right patient's id; ``purges``: entry refs to purge.
    """
    out = Outcome()
    now = instant(clock.now())
    groups = {ref: [ref, *cascade(repo, ref)] for ref in invalid}
    by_author: dict[str, list[str]] = {}
    pracs_of: dict[str, set[str]] = {}
    contents: dict[str, dict[str, Any]] = {}
    for ref in [r for group in groups.values() for r in group]:
        if ref in out.withdrawn:
            continue
        rtype, rid = ref.split("/", 1)
        try:
            current = repo.read(rtype, rid)
        except FhirError:
            continue  # already withdrawn by an earlier decision, or gone
        res = current.exact()  # its decimals as they were (R4 datatypes.html#decimal)
        contents[ref] = res
        orgs, pracs = authors(repo, res, fallback_org)
        for org in orgs:
            by_author.setdefault(org, []).append(ref)
            pracs_of.setdefault(org, set()).update(pracs)
        repo.signed_corrections.add((rtype, rid))  # an authority's withdrawal, not an edit
        stored = repo.update(rtype, rid, {**withdrawn(res), "id": rid}).stored
        out.withdrawn[ref] = stored.version_id
    agent = {
        "type": concept(PROVENANCE_AGENT, "verifier", "Verifier"),
        "who": {
            "reference": report.owner_ref,
            "display": f"{authority_name} — {reviewer_name}" if reviewer_name else authority_name,
        },
    }
    if repo.ctx.account_id:
        agent["who"]["identifier"] = {"system": ACCOUNT_SYSTEM, "value": repo.ctx.account_id}
    provenance = {
        "resourceType": "Provenance",
        "target": [
            *({"reference": f"{r}/_history/{v}"} for r, v in out.withdrawn.items()),
            {"reference": f"Patient/{report.patient_id}"},
        ],
        "occurredDateTime": now,
        "recorded": now,
        "activity": concept(DATA_OPERATION, "NULLIFY", "nullify"),
        "reason": [{"text": reason[:2000]}],
        "agent": [agent],
        "entity": [{"role": "source", "what": {"reference": report.ref}}],
    }
    if out.withdrawn:
        out.provenance = f"Provenance/{repo.create(provenance).stored.id}"
    # Copies for the right patient: new ids first, so a moved report points at moved results.
    move_refs = {
        r: pid for ref, pid in moves.items() for r in groups.get(ref, [ref]) if r in contents
    }
    mapping = {r: f"{r.split('/', 1)[0]}/{uuid.uuid4()}" for r in move_refs}
    for old_ref, new_pid in move_refs.items():
        new_type, new_id = mapping[old_ref].split("/", 1)
        body = _moved_copy(contents[old_ref], report.patient_id, new_pid, mapping)
        repo.update(new_type, new_id, {**body, "id": new_id})
        out.moved[old_ref] = mapping[old_ref]
    for new_pid in sorted(set(move_refs.values())):
        mine = [o for o, p in move_refs.items() if p == new_pid]
        repo.create(
            {
                "resourceType": "Provenance",
                "target": [
                    *({"reference": mapping[o]} for o in mine),
                    {"reference": f"Patient/{new_pid}"},
                ],
                "occurredDateTime": now,
                "recorded": now,
                "activity": concept(DATA_OPERATION, "CREATE", "create"),
                "reason": [{"text": f"Перенесено из другой карты по решению ({report.ref})"}],
                "agent": [agent],
                "entity": [
                    {"role": "source", "what": {"reference": report.ref}},
                    # the source version is withdrawn: auditors can still read it
                    *(
                        {
                            "role": "revision",
                            "what": {"reference": f"{o}/_history/{out.withdrawn[o]}"},
                        }
                        for o in mine
                        if o in out.withdrawn
                    ),
                ],
            }
        )
    for ref in purges:
        for r in groups.get(ref, [ref]):
            if r in out.withdrawn:
                rtype, rid = r.split("/", 1)
                repo.purge(rtype, rid, f"{report.ref}: {reason}"[:300])
                out.purged.append(r)
    for org, refs in sorted(by_author.items()):
        recipients = [{"reference": org}, *({"reference": p} for p in sorted(pracs_of[org]))]
        text = (
            f"{authority_name}: по обращению пациента признаны ошибочными и удалены из карты "
            f"записи ({len(refs)}). Причина: {reason}"
        )
        comm = {
            "resourceType": "Communication",
            "status": "completed",
            "category": [concept(COMMUNICATION_SYSTEM, "correction", "Исправление карты")],
            "subject": {"reference": f"Patient/{report.patient_id}"},
            "basedOn": [{"reference": report.ref}],
            "about": [{"reference": r} for r in refs],
            "sent": now,
            "recipient": recipients,
            "sender": {"reference": report.owner_ref, "display": authority_name},
            "payload": [{"contentString": text[:4000]}],
        }
        out.notified.append(f"Communication/{repo.create(comm).stored.id}")
    return out


def question_to_authors(
    repo: Repository, report: Report, orgs: dict[str, set[str]], authority_name: str, text: str
) -> list[str]:
    """A Communication per author organisation carrying the reviewer's question."""
    made = []
    for org, pracs in sorted(orgs.items()):
        comm = {
            "resourceType": "Communication",
            "status": "completed",
            "category": [
                concept(COMMUNICATION_SYSTEM, "correction-question", "Запрос по обращению")
            ],
            "subject": {"reference": f"Patient/{report.patient_id}"},
            "basedOn": [{"reference": report.ref}],
            "about": [{"reference": r} for r in report.entries],
            "sent": instant(clock.now()),
            "recipient": [{"reference": org}, *({"reference": p} for p in sorted(pracs))],
            "sender": {"reference": report.owner_ref, "display": authority_name},
            "payload": [{"contentString": text[:4000]}],
        }
        made.append(f"Communication/{repo.create(comm).stored.id}")
    return made


def author_orgs(repo: Repository, report: Report, fallback_org: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ref in report.entries:
        rtype, rid = ref.split("/", 1)
        try:
            res = repo.read(rtype, rid).json()
        except FhirError:
            continue
        orgs, pracs = authors(repo, res, fallback_org)
        for org in orgs:
            out.setdefault(org, set()).update(pracs)
    return out


__all__ = [
    "Outcome",
    "apply",
    "author_orgs",
    "authors",
    "question_to_authors",
    "ref_id",
    "withdrawn",
]
