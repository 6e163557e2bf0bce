"""The audit log read as FHIR AuditEvent (read-only), searchable by patient, date, agent, entity."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, func, select

from medcard.access.context import AccessContext
from medcard.access.policy import restriction
from medcard.clock import format_instant
from medcard.db.tables import audit_log
from medcard.fhir.outcomes import bad_request, not_found
from medcard.fhir.search.values import date_range

ACTION_TYPE = {"C": "create", "R": "read", "U": "update", "D": "delete", "E": "execute"}
SUPPORTED = {"patient", "date", "agent", "entity", "action", "_count", "_offset"}
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


def search(
    engine: Engine, ctx: AccessContext, query: list[tuple[str, str]], max_count: int = 1000
) -> tuple[list[dict[str, Any]], int, int, int]:
    conds = []
    scope = _scope(ctx, "s")
    if scope is not None:
        conds.append(scope)
    count, offset = 50, 0
    for key, value in query:
        if "\x00" in key or "\x00" in value:
            raise bad_request("Search parameters cannot contain NUL characters")
        name = key.split(":")[0]
        if name not in SUPPORTED:
            raise bad_request(f"Unknown search parameter '{key}' for AuditEvent")
        if name == "patient":
            conds.append(audit_log.c.patient_id == value.removeprefix("Patient/"))
        elif name == "agent":
            conds.append(audit_log.c.actor == value)
        elif name == "entity":
            rtype, _, rid = value.partition("/")
            conds.append(audit_log.c.resource_type == rtype)
            if rid:
                conds.append(audit_log.c.resource_id == rid)
        elif name == "action":
            conds.append(audit_log.c.action == value)
        elif name == "date":
            conds.append(_date(value))
        elif name == "_count":
            count = _bounded(value, 0, max_count)
        elif name == "_offset":
            offset = _bounded(value, 0, 10_000_000)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(audit_log).where(*conds)).scalar_one()
        rows = conn.execute(
            select(audit_log)
            .where(*conds)
            .order_by(audit_log.c.id.desc())
            .limit(count)
            .offset(offset)
        ).all()
    return [to_audit_event(r) for r in rows], total, count, offset


def _bounded(value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise bad_request(f"'{value}' is not an integer") from None
    if not low <= n <= high:
        raise bad_request(f"{value} is outside {low}..{high}")
    return n


def _date(value: str) -> Any:
    prefix = value[:2] if value[:2] in ("eq", "gt", "lt", "ge", "le") else "eq"
    text = value[2:] if value[:2] in ("eq", "gt", "lt", "ge", "le") else value
    try:
        low, high = date_range(text)
    except ValueError:
        raise bad_request(f"'{value}' is not a valid date") from None
    col = audit_log.c.recorded
    return {
        "eq": col.between(low, high),
        "gt": col > high,
        "lt": col < low,
        "ge": col >= low,
        "le": col <= high,
    }[prefix]
