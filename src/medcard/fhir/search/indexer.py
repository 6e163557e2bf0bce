"""Turn a resource into typed search-index rows, one list per index table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from medcard.fhir.search.paths import evaluate, reference_type
from medcard.fhir.search.registry import indexed_params
from medcard.fhir.search.values import MAX_US, date_range, fold

CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
MAX_STR = 255

Rows = dict[str, list[dict[str, Any]]]


def _tokens(value: Any) -> list[tuple[str | None, str | None]]:
    if isinstance(value, bool):
        return [(None, "true" if value else "false")]
    if isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return []
    if "coding" in value or ("text" in value and "code" not in value and "value" not in value):
        return [t for c in value.get("coding", []) for t in _tokens(c)]
    if "value" in value and "code" not in value:  # Identifier or ContactPoint
        system = value.get("system")
        if system in CONTACT_SYSTEMS:
            system = None
        v = value.get("value")
        return [(system, str(v))] if v is not None else []
    if "code" in value:  # Coding, Quantity as token
        return [(value.get("system"), str(value["code"]))]
    return []


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    out: list[str] = []
    for key in (
        "text",
        "family",
        "given",
        "prefix",
        "suffix",
        "line",
        "city",
        "district",
        "state",
        "postalCode",
        "country",
        "value",
        "display",
    ):
        v = value.get(key)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, str))
    return out


def _dates(value: Any) -> list[tuple[int, int]]:
    try:
        if isinstance(value, str):
            return [date_range(value)]
        if isinstance(value, dict):
            if "start" in value or "end" in value:  # Period
                low = date_range(value["start"])[0] if "start" in value else -MAX_US
                high = date_range(value["end"])[1] if "end" in value else MAX_US
                return [(low, high)]
            if "event" in value:  # Timing
                return [date_range(e) for e in value["event"] if isinstance(e, str)]
            if "repeat" in value and isinstance(value["repeat"], dict):
                bounds = value["repeat"].get("boundsPeriod")
                return _dates(bounds) if bounds else []
    except ValueError:
        return []
    return []


def _reference(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):  # canonical
        return {"target_type": None, "target_id": None, "url": value}
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    if not isinstance(ref, str) or ref.startswith("#"):
        return None
    rtype = reference_type(ref)
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if rtype is None:
        return {"target_type": None, "target_id": None, "url": ref}
    local = len(parts) == 2
    return {"target_type": rtype, "target_id": parts[-1], "url": None if local else ref}


def index_rows(resource: dict[str, Any], patient_id: str) -> Rows:
    rtype = resource["resourceType"]
    rid = resource["id"]
    rows: Rows = {}

    def add(table: str, param: str, **values: Any) -> None:
        rows.setdefault(table, []).append(
            {
                "resource_type": rtype,
                "resource_id": rid,
                "patient_id": patient_id,
                "param": param,
                **values,
            }
        )

    for p in indexed_params(rtype):
        values = [v for path in p.paths for v in evaluate(resource, list(path))]
        if not values:
            continue
        seen: set[Any] = set()
        for v in values:
            if p.type == "token":
                for system, code in _tokens(v):
                    key = (system, code)
                    if key not in seen:
                        seen.add(key)
                        add("token", p.name, system=_cut(system), code=_cut(code))
            elif p.type == "string":
                for s in _strings(v):
                    if s not in seen:
                        seen.add(s)
                        add("string", p.name, value=_cut(fold(s)), exact=_cut(s))
            elif p.type == "date":
                for low, high in _dates(v):
                    add("date", p.name, low=low, high=high)
            elif p.type == "reference":
                r = _reference(v)
                if r is not None:
                    add("reference", p.name, **r)
            elif p.type == "quantity":
                if isinstance(v, dict) and isinstance(v.get("value"), int | float | Decimal):
                    add(
                        "quantity",
                        p.name,
                        value=float(v["value"]),
                        system=_cut(v.get("system")),
                        code=_cut(v.get("code") or v.get("unit")),
                    )
            elif p.type == "number":
                if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
                    add("number", p.name, value=float(v))
            elif p.type == "uri" and isinstance(v, str):
                add("uri", p.name, value=v)
    return rows


def _cut(s: str | None) -> str | None:
    return s if s is None or len(s) <= MAX_STR else s[:MAX_STR]
