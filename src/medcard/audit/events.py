"""The audit log read as FHIR AuditEvent (read-only): searchable by patient, date, agent,
entity, subtype and action, sortable by date, paged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, false, func, or_, select

from medcard.access.context import AccessContext
from medcard.access.policy import restriction
from medcard.clock import format_instant
from medcard.db.tables import audit_log
from medcard.fhir import spec
from medcard.fhir.outcomes import bad_request, not_found
from medcard.fhir.search.values import date_range

ACTION_TYPE = {"C": "create", "R": "read", "U": "update", "D": "delete", "E": "execute"}
REFERENCE_PARAMS = frozenset({"patient", "agent", "entity"})
# _snapshot pins a paged search to the log as its first page saw it (see AuditPage).
SUPPORTED = frozenset(
    {*REFERENCE_PARAMS, "date", "subtype", "action", "_sort", "_count", "_offset", "_snapshot"}
    | {"_format", "_pretty"}
)
IGNORED = frozenset({"_format", "_pretty"})  # JSON is the only format, as for other types
SORT_KEYS = frozenset({"date", "_lastUpdated"})
ACTION_SYSTEM = "http://hl7.org/fhir/audit-event-action"
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
RESTFUL_CODES = frozenset(
    [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history",
        "history-instance",
        "history-type",
        "history-system",
        "create",
        "search",
        "search-type",
        "search-system",
        "capabilities",
        "transaction",
        "batch",
        "operation",
    ]
)
# Our own events (sign-in, audit reports, $everything, ...) are not REST interactions.
MEDCARD_INTERACTION = "https://medcard.example/fhir/CodeSystem/audit-interaction"
_PURPOSE_CODE = re.compile(r"^[A-Z]{2,16}$")  # v3 PurposeOfUse codes: TREAT, ETREAT, HOPERAT...


def organization_ref(value: str) -> str:
    """Audit entries name an organisation as ``Organization/x`` or by its bare id."""
    return value if "/" in value else f"Organization/{value}"


def _purpose_of_event(row: Any) -> list[dict[str, Any]]:
    """R4 AuditEvent.purposeOfEvent: the stated purpose and, for emergency access, BTG."""
    purposes: list[dict[str, Any]] = []
    purpose = getattr(row, "purpose", "") or ""
    if purpose and _PURPOSE_CODE.match(purpose):
        purposes.append({"coding": [{"system": ACT_REASON, "code": purpose}]})
    elif purpose:
        purposes.append({"text": purpose})
    if getattr(row, "emergency", False):
        purposes.append(
            {
                "coding": [{"system": ACT_REASON, "code": "BTG", "display": "break the glass"}],
                "text": "emergency access",
            }
        )
    return purposes


def to_audit_event(row: Any) -> dict[str, Any]:
    """One audit_log row as an R4 AuditEvent (https://hl7.org/fhir/R4/auditevent.html)."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "meta": {"versionId": "1", "lastUpdated": format_instant(row.recorded)},
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [
            {
                "system": RESTFUL if row.interaction in RESTFUL_CODES else MEDCARD_INTERACTION,
                "code": row.interaction,
            }
        ],
        "action": row.action,
        "recorded": format_instant(row.recorded),
        "outcome": row.outcome,
        "agent": [
            {
                "who": {"reference": row.actor} if "/" in row.actor else {"display": row.actor},
                "requestor": True,
                **({"altId": row.client_id} if row.client_id else {}),
            }
        ],
        "source": {"observer": {"display": "medcard"}},
    }
    purposes = _purpose_of_event(row)
    if purposes:
        event["purposeOfEvent"] = purposes
        event["agent"][0]["purposeOfUse"] = purposes
    organization = getattr(row, "organization", "") or ""
    if organization:
        # The organisation the person acted for: a second, non-requesting agent.
        event["agent"].append(
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
                            "code": "PROV",
                            "display": "healthcare provider",
                        }
                    ]
                },
                "who": {"reference": organization_ref(organization)},
                "requestor": False,
            }
        )
    if row.detail:
        event["outcomeDesc"] = row.detail
    entities = []
    if row.resource_type and row.resource_id:
        entities.append({"what": {"reference": f"{row.resource_type}/{row.resource_id}"}})
    elif row.resource_type:
        entities.append({"what": {"display": row.resource_type}})
    if row.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{row.patient_id}"},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                },
            }
        )
    if entities:
        event["entity"] = entities
    return event


def _scope(ctx: AccessContext, permission: str) -> Any:
    allowed = restriction(ctx, "AuditEvent", permission)
    if allowed.patients is None:
        return None
    return audit_log.c.patient_id.in_(sorted(allowed.patients))


def scoped_patient(ctx: AccessContext) -> str:
    """The one card a caller's AuditEvent reads are about, when there is exactly one."""
    return next(iter(ctx.patient_ids)) if len(ctx.patient_ids) == 1 else ""


def patient_of(event: dict[str, Any]) -> str:
    """The card an AuditEvent is about (its patient entity), or ""."""
    for entity in event.get("entity", []):
        if entity.get("type", {}).get("code") == "1":
            return str(entity["what"]["reference"]).removeprefix("Patient/")
    return ""


def read(engine: Engine, ctx: AccessContext, event_id: str) -> dict[str, Any]:
    cond = _scope(ctx, "r")
    try:
        eid = int(event_id)
    except ValueError:
        raise not_found(f"AuditEvent/{event_id} is not known") from None
    stmt = select(audit_log).where(audit_log.c.id == eid)
    if cond is not None:
        stmt = stmt.where(cond)
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    if row is None:
        raise not_found(f"AuditEvent/{event_id} is not known")
    return to_audit_event(row)


@dataclass
class AuditPage:
    """One page of an AuditEvent search and what its paging links need.

    ``snapshot`` is the newest audit entry the first page could see: every later page
    carries it (``_snapshot``), so entries written while a client pages (its own reads
    of the log among them) do not shift the pages under it.
    """

    events: list[dict[str, Any]]
    total: int
    count: int
    offset: int
    snapshot: int


def search(
    engine: Engine, ctx: AccessContext, query: list[tuple[str, str]], max_count: int = 1000
) -> AuditPage:
    """AuditEvent search (https://hl7.org/fhir/R4/auditevent.html#search).

    ``patient``, ``agent`` and ``entity`` are references (``Type/id``, a bare id, or a
    ``:Type`` modifier), ``subtype`` and ``action`` tokens, ``date`` a date with the
    usual prefixes; commas mean "any of", repeated parameters "all of".  ``_sort`` is
    ``date`` (oldest first) or ``-date`` (newest first, also the default).  The
    caller's scope is applied first, whatever the parameters say.
    """
    conds = []
    scope = _scope(ctx, "s")
    if scope is not None:
        conds.append(scope)
    count, offset, snapshot = 50, 0, None
    newest_first, by_date = True, False
    for key, value in query:
        if "\x00" in key or "\x00" in value:
            raise bad_request("Search parameters cannot contain NUL characters")
        name, _, modifier = key.partition(":")
        if name not in SUPPORTED:
            raise bad_request(f"Unknown search parameter '{key}' for AuditEvent")
        if modifier and (name not in REFERENCE_PARAMS or not _TYPE_NAME.match(modifier)):
            raise bad_request(f"Modifier ':{modifier}' is not supported on AuditEvent {name}")
        if name in IGNORED:
            continue
        if name in REFERENCE_PARAMS or name in ("subtype", "action"):
            values = [v.strip() for v in value.split(",")]
            if modifier:
                values = [f"{modifier}/{v}" for v in values]
            conds.append(or_(*(_MATCHERS[name](v) for v in values)))
        elif name == "date":
            conds.append(_date(value))
        elif name == "_sort":
            newest_first, by_date = _sort(value)
        elif name == "_count":
            count = _bounded(value, 0, max_count)
        elif name == "_offset":
            offset = _bounded(value, 0, 10_000_000)
        elif name == "_snapshot":
            snapshot = _bounded(value, 0, 2**62)
    order = [audit_log.c.recorded, audit_log.c.id] if by_date else [audit_log.c.id]
    with engine.connect() as conn:
        if snapshot is None:
            snapshot = conn.execute(select(func.max(audit_log.c.id))).scalar_one() or 0
        conds.append(audit_log.c.id <= snapshot)
        total = conn.execute(select(func.count()).select_from(audit_log).where(*conds)).scalar_one()
        rows = conn.execute(
            select(audit_log)
            .where(*conds)
            .order_by(*(c.desc() if newest_first else c.asc() for c in order))
            .limit(count)
            .offset(offset)
        ).all()
    return AuditPage([to_audit_event(r) for r in rows], total, count, offset, snapshot)


def _sort(value: str) -> tuple[bool, bool]:
    """(newest first, by date) for ``_sort``; ``date`` and ``_lastUpdated`` are the same instant."""
    keys = [k.strip() for k in value.split(",") if k.strip()]
    if not keys or any(k.lstrip("-") not in SORT_KEYS for k in keys):
        raise bad_request(f"AuditEvent can be sorted by date or -date, not '{value}'")
    return keys[0].startswith("-"), True


def _reference(value: str) -> tuple[str, str]:
    """(type, id) of a reference search value; type is "" for a bare id."""
    if "://" in value:  # an absolute URL: its last two segments are Type/id
        value = "/".join(value.rstrip("/").split("/")[-2:])
    rtype, _, rid = value.rpartition("/")
    if not rid:
        raise bad_request(f"'{value}' is not a reference")
    return rtype, rid


def _like_suffix(rid: str) -> Any:
    escaped = rid.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return audit_log.c.actor.like(f"%/{escaped}", escape="\\")


def _patient(value: str) -> Any:
    rtype, rid = _reference(value)
    if rtype not in ("", "Patient"):
        return false()
    return audit_log.c.patient_id == rid


def _agent(value: str) -> Any:
    """AuditEvent.agent.who: the person (or client) who acted, and the organisation they acted for."""
    rtype, rid = _reference(value)
    if not rtype:
        return or_(
            audit_log.c.actor == rid,
            _like_suffix(rid),
            audit_log.c.organization.in_([rid, f"Organization/{rid}"]),
        )
    ref = f"{rtype}/{rid}"
    if rtype == "Organization":
        return or_(audit_log.c.actor == ref, audit_log.c.organization.in_([rid, ref]))
    return audit_log.c.actor == ref


def _entity(value: str) -> Any:
    """AuditEvent.entity.what: the resource touched and the patient whose card it is."""
    if "/" not in value and value in spec.resource_types():
        # medcard's own shorthand (kept for existing clients): every entry about a type
        return audit_log.c.resource_type == value
    rtype, rid = _reference(value)
    if not rtype:
        return or_(audit_log.c.resource_id == rid, audit_log.c.patient_id == rid)
    same = and_(audit_log.c.resource_type == rtype, audit_log.c.resource_id == rid)
    return or_(same, audit_log.c.patient_id == rid) if rtype == "Patient" else same


def _subtype(value: str) -> Any:
    """subtype is a token: ``code``, ``system|code`` or ``system|`` (every code of it)."""
    if "|" not in value:
        return audit_log.c.interaction == value
    system, _, code = value.partition("|")
    restful = audit_log.c.interaction.in_(sorted(RESTFUL_CODES))
    if system == RESTFUL:
        return restful if not code else and_(restful, audit_log.c.interaction == code)
    if system == MEDCARD_INTERACTION:
        return ~restful if not code else and_(~restful, audit_log.c.interaction == code)
    return false()  # every subtype carries one of our two systems


def _action(value: str) -> Any:
    system, bar, code = value.rpartition("|")
    if bar and system not in ("", ACTION_SYSTEM):
        return false()
    return audit_log.c.action == code


_MATCHERS = {
    "patient": _patient,
    "agent": _agent,
    "entity": _entity,
    "subtype": _subtype,
    "action": _action,
}


def _bounded(value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise bad_request(f"'{value}' is not an integer") from None
    if not low <= n <= high:
        raise bad_request(f"{value} is outside {low}..{high}")
    return n


DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def _date(value: str) -> Any:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    try:
        low, high = date_range(text)
    except ValueError:
        raise bad_request(f"'{value}' is not a valid date") from None
    col = audit_log.c.recorded
    return {
        "eq": col.between(low, high),
        "ne": ~col.between(low, high),
        "gt": col > high,
        "sa": col > high,
        "lt": col < low,
        "eb": col < low,
        "ge": col >= low,
        "le": col <= high,
    }[prefix]
