"""Clinical entries → ChargeItem lines, idempotently (``for_patient``, ``updated_since``).

Generation is a reconciliation, not a write hook: a hook runs inside the entry's own
transaction, before it commits, and cannot write other resources there.  So lines are
made by ``medcard billing generate`` (all cards, one card, or what changed since a
moment), by the demo loader, and by a periodic job (``billing.jobs``) over the entries
changed lately.  Running it again changes nothing: a line's id is derived from its
source entry and service (``model.line_id``), an existing line — also a voided one — is
never written again, and all lines of a card are written in one transaction.

Also reconciled: a line whose entries left the card (withdrawn as entered in error by
a correction) is voided; a line flagged ``not-billable`` for want of a policy becomes
billable once the registrar records a valid one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Engine

from medcard import clock
from medcard.access.context import AccessContext
from medcard.billing import prices, sources
from medcard.billing.model import (
    BILLABLE,
    COVERAGE_EXT,
    INSURER_EXT,
    LINE_SYSTEM,
    NOT_BILLABLE,
    REGION_EXT,
    UNIT_PRICE_EXT,
    VOIDED,
    account_id,
    line_id,
    line_key,
    money,
    read_line,
)
from medcard.corrections.authorities import AuthorityType, kind_of
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository, Stored
from medcard.identifiers import ENP_SYSTEM, enp_checksum_ok
from medcard.regions.lookup import region_of_organization
from medcard.terminology import reference as cat

PAGE: Final = 1000
CTX_ACTOR: Final = "system:billing"


@dataclass(frozen=True)
class Policy:
    coverage: str  # Coverage/x
    insurer_ref: str
    insurer_name: str
    enp: str


@dataclass
class Flag:
    """A line (or entry) that could not be billed, and why; shown to the registrar."""

    patient_id: str
    source: str
    key: str
    message: str


@dataclass
class Outcome:
    created: int = 0
    billable: int = 0
    not_billable: int = 0
    voided: int = 0
    repriced: int = 0
    existing: int = 0
    flags: list[Flag] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        for name in ("created", "billable", "not_billable", "voided", "repriced", "existing"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.flags.extend(other.flags)


def system_repo(purpose: str = "billing") -> AccessContext:
    return AccessContext.system(CTX_ACTOR, purpose=purpose)


def search_all(repo: Repository, rtype: str, params: list[tuple[str, str]]) -> Iterator[Stored]:
    offset = 0
    while True:
        found = repo.search(
            parse(
                rtype,
                [*params, ("_count", str(PAGE)), ("_offset", str(offset))],
                max_count=PAGE,
            )
        ).matches
        yield from found
        if len(found) < PAGE:
            return
        offset += PAGE


def _day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def policies(repo: Repository, pid: str) -> list[dict[str, Any]]:
    return [m.json() for m in search_all(repo, "Coverage", [("beneficiary", f"Patient/{pid}")])]


def policy_on(
    repo: Repository, coverages: list[dict[str, Any]], when: str
) -> tuple[Policy | None, str]:
    """The valid OMS policy on ``when``, or why there is none (a page text key)."""
    day = _day(when)
    if not coverages:
        return None, "bill_flag_no_policy"
    reason = "bill_flag_no_policy"
    for cov in coverages:
        if cov.get("status") != "active":
            reason = "bill_flag_policy_inactive"
            continue
        period = cov.get("period") or {}
        start, end = _day(str(period.get("start", ""))), _day(str(period.get("end", "")))
        if day is not None and ((start and day < start) or (end and day > end)):
            reason = "bill_flag_policy_period"
            continue
        enp = next(
            (
                str(i.get("value", ""))
                for i in cov.get("identifier") or []
                if isinstance(i, dict) and i.get("system") == ENP_SYSTEM
            ),
            str(cov.get("subscriberId") or ""),
        )
        if not enp_checksum_ok(enp):
            reason = "bill_flag_bad_enp"
            continue
        for payor in cov.get("payor") or []:
            ref = str(payor.get("reference", "")) if isinstance(payor, dict) else ""
            if not ref.startswith("Organization/"):
                continue
            try:
                org = repo.read("Organization", ref.split("/", 1)[1]).json()
            except FhirError:
                continue
            if kind_of(org) == AuthorityType.INSURER:
                return Policy(f"Coverage/{cov['id']}", ref, str(org.get("name") or ref), enp), ""
        reason = "bill_flag_no_insurer"
    return None, reason


FLAG_TEXT: Final = {
    "bill_flag_no_policy": "The patient has no OMS policy on file",
    "bill_flag_policy_inactive": "The patient's OMS policy is not active",
    "bill_flag_policy_period": "No OMS policy covers the date of the service",
    "bill_flag_bad_enp": "The OMS policy number (ENP) fails its checksum",
    "bill_flag_no_insurer": "The OMS policy names no insurer known here",
}


def _patient_display(patient: dict[str, Any], enp: str) -> str:
    names = patient.get("name") or [{}]
    name = names[0] if isinstance(names[0], dict) else {}
    text = str(name.get("text") or "").strip()
    if not text:
        text = " ".join([str(name.get("family", "")), *map(str, name.get("given") or [])]).strip()
    return f"{text}, ЕНП {enp}" if enp else text


def _enp_of(patient: dict[str, Any]) -> str:
    for ident in patient.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") == ENP_SYSTEM:
            return str(ident.get("value", ""))
    return ""


class _Prices:
    def __init__(self, engine: Engine, repo: Repository) -> None:
        self.engine, self.repo = engine, repo
        self.lists: dict[str, prices.PriceList] = {}

    def region(self, org_ref: str) -> str:
        return region_of_organization(self.engine, org_ref.split("/", 1)[1]) or ""

    def price(self, region: str, code: str) -> Decimal | None:
        if region not in self.lists:
            self.lists[region] = prices.PriceList(self.repo, region)
        return self.lists[region].price(code)


def _line(
    draft: sources.Draft,
    pid: str,
    patient_display: str,
    policy: Policy | None,
    reason: str,
    region: str,
    unit: Decimal,
) -> dict[str, Any]:
    rid = line_id(draft.source, draft.service.code)
    status = BILLABLE if policy is not None else NOT_BILLABLE
    ext: list[dict[str, Any]] = [
        {"url": UNIT_PRICE_EXT, "valueMoney": money(unit)},
    ]
    if region:
        ext.append(
            {"url": REGION_EXT, "valueCoding": {"system": cat.REGION_SYSTEM, "code": region}}
        )
    if policy is not None:
        ext.append(
            {
                "url": INSURER_EXT,
                "valueReference": {"reference": policy.insurer_ref, "display": policy.insurer_name},
            }
        )
        ext.append({"url": COVERAGE_EXT, "valueReference": {"reference": policy.coverage}})
    line: dict[str, Any] = {
        "resourceType": "ChargeItem",
        "id": rid,
        "extension": ext,
        "identifier": [
            {"system": LINE_SYSTEM, "value": line_key(draft.source, draft.service.code)}
        ],
        "status": status,
        "code": draft.service.codeable(),
        "subject": {"reference": f"Patient/{pid}", "display": patient_display},
        "occurrenceDateTime": draft.date,
        "performingOrganization": {"reference": draft.org_ref, "display": draft.org_name},
        "quantity": {"value": float(draft.quantity)},
        "priceOverride": money((unit * draft.quantity).quantize(Decimal("0.01"))),
        "overrideReason": f"Тариф ОМС региона {region or '—'} на дату оказания услуги",
        "enteredDate": clock.now().isoformat(timespec="seconds"),
        "supportingInformation": [{"reference": e} for e in draft.entries],
    }
    if draft.context:
        line["context"] = {"reference": draft.context}
    if draft.service_ref and draft.service_ref.split("/", 1)[0] in (
        "Immunization",
        "Observation",
        "DiagnosticReport",
        "ImagingStudy",
        "Procedure",
    ):
        line["service"] = [{"reference": draft.service_ref}]
    if policy is not None:
        line["account"] = [{"reference": f"Account/{account_id(policy.insurer_ref[13:])}"}]
    else:
        line["note"] = [{"text": FLAG_TEXT.get(reason, reason)}]
    return line


def _ensure_account(repo: Repository, policy: Policy, seen: set[str]) -> None:
    aid = account_id(policy.insurer_ref.split("/", 1)[1])
    if aid in seen:
        return
    seen.add(aid)
    try:
        repo.read("Account", aid)
        return
    except FhirError:
        pass
    repo.update(
        "Account",
        aid,
        {
            "resourceType": "Account",
            "id": aid,
            "status": "active",
            "type": {"text": "Реестр счетов ОМС"},
            "name": f"ОМС: услуги, оплачиваемые через {policy.insurer_name}"[:250],
            "owner": {"reference": policy.insurer_ref, "display": policy.insurer_name},
        },
    )


def _gone(repo: Repository, ref: str) -> bool:
    rtype, _, rid = ref.partition("/")
    try:
        stored = repo.read(rtype, rid)
    except FhirError:
        return True
    return stored.hidden or stored.deleted


def for_patient(engine: Engine, pid: str) -> Outcome:
    """Bill every finished entry of one card that has no line yet; one transaction."""
    out = Outcome()
    repo = Repository(engine, system_repo(f"billing of Patient/{pid}"))
    repo.include_hidden = True  # a voided line exists: never bill its entry again
    try:
        patient = repo.read("Patient", pid).json()
    except FhirError:
        return out
    resolver = sources.Resolver(repo)
    tariffs = _Prices(engine, repo)
    coverages = policies(repo, pid)
    existing = {
        m.id: read_line(m.json())
        for m in search_all(repo, "ChargeItem", [("patient", f"Patient/{pid}")])
    }
    writes: list[dict[str, Any]] = []
    accounts: list[Policy] = []
    for rtype in sources.SOURCE_TYPES:
        for m in search_all(repo, rtype, [("patient", f"Patient/{pid}")]):
            drafts, problems = sources.drafts_for(m.json(), resolver)
            out.flags.extend(Flag(pid, p.source, p.key, p.message) for p in problems)
            for draft in drafts:
                rid = line_id(draft.source, draft.service.code)
                policy, reason = policy_on(repo, coverages, draft.date)
                current = existing.get(rid)
                if current is None:
                    try:
                        stored = repo.read("ChargeItem", rid)
                        current = read_line(stored.json())  # voided lines are hidden
                    except FhirError:
                        current = None
                if current is not None:
                    if current.status == NOT_BILLABLE and policy is not None:
                        region = tariffs.region(draft.org_ref)
                        unit = tariffs.price(region, draft.service.code)
                        if unit is not None:
                            line = _line(
                                draft,
                                pid,
                                _patient_display(patient, policy.enp),
                                policy,
                                "",
                                region,
                                unit,
                            )
                            writes.append(line)
                            accounts.append(policy)
                            out.repriced += 1
                            continue
                    if current.status == NOT_BILLABLE:
                        out.flags.append(
                            Flag(
                                pid,
                                draft.source,
                                reason or "bill_flag_no_policy",
                                FLAG_TEXT.get(reason, reason),
                            )
                        )
                    out.existing += 1
                    continue
                region = tariffs.region(draft.org_ref)
                unit = tariffs.price(region, draft.service.code)
                if unit is None:
                    out.flags.append(
                        Flag(pid, draft.source, "bill_flag_unknown_code", draft.service.code)
                    )
                    continue
                display = _patient_display(patient, policy.enp if policy else _enp_of(patient))
                writes.append(_line(draft, pid, display, policy, reason, region, unit))
                out.created += 1
                if policy is not None:
                    accounts.append(policy)
                    out.billable += 1
                else:
                    out.not_billable += 1
                    out.flags.append(Flag(pid, draft.source, reason, FLAG_TEXT.get(reason, reason)))
    for old in existing.values():
        if (
            old.status in (BILLABLE, NOT_BILLABLE)
            and old.entries
            and any(_gone(repo, e) for e in old.entries[:1])
        ):
            voided = {**old.resource, "status": VOIDED}
            voided["note"] = [
                *(old.resource.get("note") or []),
                {"text": "Запись, за которую выставлена услуга, удалена из карты"},
            ]
            writes.append(voided)
            out.voided += 1
    if writes:
        seen: set[str] = set()
        with repo.unit_of_work():
            for policy in accounts:
                _ensure_account(repo, policy, seen)
            for line in writes:
                repo.update("ChargeItem", line["id"], line)
    repo.close()
    return out


def patients_changed_since(engine: Engine, since: dt.datetime) -> list[str]:
    """Cards with an entry of a billable kind written since ``since``."""
    repo = Repository(engine, system_repo("billing: changed entries"))
    pids: dict[str, None] = {}
    stamp = since.astimezone(dt.UTC).isoformat(timespec="seconds")
    try:
        for rtype in sources.SOURCE_TYPES:
            for m in search_all(repo, rtype, [("_lastUpdated", f"ge{stamp}")]):
                if m.patient_id:
                    pids[m.patient_id] = None
    finally:
        repo.close()  # the searches read cards: audited like any other read
    return list(pids)


def all_patients(engine: Engine) -> list[str]:
    repo = Repository(engine, system_repo("billing: every card"))
    try:
        return [m.id for m in search_all(repo, "Patient", [])]
    finally:
        repo.close()


def run(engine: Engine, pids: Iterable[str]) -> Outcome:
    total = Outcome()
    for pid in pids:
        total.add(for_patient(engine, pid))
    return total
