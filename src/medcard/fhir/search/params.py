"""Parse a FHIR search query string into filters and result parameters.

https://hl7.org/fhir/R4/search.html — prefixes (3.1.1.4), modifiers (3.1.1.5),
chaining (3.1.1.4.12), _include/_revinclude (3.1.1.5.4), _sort, _count, _summary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from medcard.fhir import spec
from medcard.fhir.outcomes import FhirError, Issue, bad_request
from medcard.fhir.search.registry import RESULT_PARAMS, SearchParam, lookup
from medcard.fhir.search.values import date_range, number_range

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
MODIFIERS = {
    "token": {"not", "missing", "exact"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "reference": {"missing"},  # plus :Type
    "quantity": {"missing"},
    "number": {"missing"},
    "uri": {"missing", "below", "above"},
}
_ESCAPED_COMMA = "\x00"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Chain:
    """``subject:Patient.name=x``: the reference parameter and what it must point to."""

    target_type: str
    param: SearchParam


@dataclass(frozen=True)
class Filter:
    name: str
    type: str
    param: SearchParam | None  # None for _id and _lastUpdated
    modifier: str | None
    values: tuple[str, ...]  # OR-ed
    chain: Chain | None = None


@dataclass(frozen=True)
class Include:
    source_type: str
    param: str
    target_type: str | None
    iterate: bool = False


@dataclass
class SearchRequest:
    resource_type: str
    filters: list[Filter] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    count: int = 50
    offset: int = 0
    include: list[Include] = field(default_factory=list)
    revinclude: list[Include] = field(default_factory=list)
    summary: str | None = None
    total: str | None = None
    elements: list[str] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def split_values(raw: str) -> tuple[str, ...]:
    """Split on unescaped commas and unescape ``\\,``, ``\\|``, ``\\$``, ``\\\\``."""
    marked = raw.replace("\\\\", "\x01").replace("\\,", _ESCAPED_COMMA)
    parts = marked.split(",")
    return tuple(
        p.replace(_ESCAPED_COMMA, ",").replace("\\$", "$").replace("\x01", "\\") for p in parts
    )


def split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


def _check_value(param_type: str, name: str, value: str, modifier: str | None) -> None:
    if modifier == "missing":
        if value not in ("true", "false"):
            raise bad_request(
                f"Search parameter '{name}:missing' takes true or false, not '{value}'"
            )
        return
    if param_type == "date":
        _, v = split_prefix(value)
        try:
            date_range(v)
        except ValueError:
            raise bad_request(f"Search parameter '{name}': '{value}' is not a valid date") from None
    elif param_type in ("number", "quantity"):
        _, v = split_prefix(value)
        number = v.split("|", 1)[0] if param_type == "quantity" else v
        try:
            number_range(number)
        except ValueError:
            raise bad_request(
                f"Search parameter '{name}': '{value}' is not a valid number"
            ) from None
    if value == "" and param_type != "string":
        raise bad_request(f"Search parameter '{name}' has an empty value")


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise bad_request(f"'{name}' must be an integer, not '{value}'") from None
    if not low <= n <= high:
        raise bad_request(f"'{name}' must be between {low} and {high}")
    return n


_NOT_SUPPORTED_TAIL = "is not supported by this server (see its CapabilityStatement)"
NOT_SUPPORTED = {
    "_list": (
        "_list (search within a List, R4 search.html#list) "
        + _NOT_SUPPORTED_TAIL
        + "; read the List and search its items by _id"
    ),
    "_has": f"_has (reverse chaining) {_NOT_SUPPORTED_TAIL}",
    "_text": f"_text (narrative search) {_NOT_SUPPORTED_TAIL}",
    "_content": f"_content (full-text search) {_NOT_SUPPORTED_TAIL}",
    "_query": f"_query (named queries) {_NOT_SUPPORTED_TAIL}",
    "_filter": f"_filter {_NOT_SUPPORTED_TAIL}",
}


def parse(
    resource_type: str,
    query: list[tuple[str, str]],
    *,
    default_count: int = 50,
    max_count: int = 1000,
    lenient: bool = False,
) -> SearchRequest:
    req = SearchRequest(resource_type, count=default_count)

    def unknown(msg: str) -> None:
        if lenient:
            req.warnings.append(Issue("warning", "not-supported", msg + " (ignored)"))
        else:
            raise bad_request(msg)

    for key, raw in query:
        name, _, modifier = key.partition(":")
        if name in RESULT_PARAMS:
            _result_param(req, name, modifier, raw, max_count)
            continue
        chain_name = None
        if "." in key:  # "subject:Patient.name": the type modifier comes before the chain
            head, chain_name = key.split(".", 1)
            name, _, modifier = head.partition(":")
        if not _NAME.match(name):
            unknown(f"Invalid search parameter name '{key}'")
            continue
        if name in ("_id", "_lastUpdated"):
            ptype = "token" if name == "_id" else "date"
            values = split_values(raw)
            for v in values:
                _check_value(ptype, name, v, modifier or None)
            if modifier and modifier not in ("missing", "not"):
                unknown(f"Modifier ':{modifier}' is not supported on {name}")
                continue
            req.filters.append(Filter(name, ptype, None, modifier or None, values))
            continue
        if name in NOT_SUPPORTED:
            # R4 common parameters this server does not implement: said so plainly (and
            # left out of the CapabilityStatement), not as an "unknown" parameter.
            if lenient:
                req.warnings.append(Issue("warning", "not-supported", NOT_SUPPORTED[name]))
                continue
            raise FhirError(400, "not-supported", NOT_SUPPORTED[name])
        param = lookup(resource_type, name)
        if param is None:
            unknown(f"Unknown search parameter '{name}' for {resource_type}")
            continue
        chain = None
        if chain_name is not None:
            chain = _chain(resource_type, param, modifier or None, chain_name, unknown)
            if chain is None:
                continue
            values = split_values(raw)
            for v in values:
                _check_value(chain.param.type, key, v, None)
            req.filters.append(Filter(name, param.type, param, None, values, chain))
            continue
        if modifier:
            allowed = MODIFIERS.get(param.type, set())
            is_type_modifier = param.type == "reference" and modifier in spec.resource_types()
            if modifier not in allowed and not is_type_modifier:
                unknown(
                    f"Modifier ':{modifier}' is not supported on {param.type} parameter '{name}'"
                )
                continue
        values = split_values(raw)
        for v in values:
            _check_value(param.type, name, v, modifier or None)
        req.filters.append(Filter(name, param.type, param, modifier or None, values))
    return req


def _chain(
    resource_type: str,
    param: SearchParam,
    type_modifier: str | None,
    chained: str,
    report: Callable[[str], None],
) -> Chain | None:
    if param.type != "reference":
        report(f"'{param.name}' is not a reference parameter and cannot be chained")
        return None
    if "." in chained:
        report("Only one level of chaining is supported")
        return None
    targets = [type_modifier] if type_modifier else list(param.targets)
    candidates = [(t, lookup(t, chained)) for t in targets]
    found = [(t, p) for t, p in candidates if p is not None]
    if not found:
        report(f"Unknown chained parameter '{param.name}.{chained}' for {resource_type}")
        return None
    if len(found) > 1:
        report(
            f"Chained parameter '{param.name}.{chained}' is ambiguous: "
            f"name the target type, e.g. '{param.name}:{found[0][0]}.{chained}'"
        )
        return None
    target_type, target_param = found[0]
    assert target_param is not None
    return Chain(target_type, target_param)


def _result_param(req: SearchRequest, name: str, modifier: str, raw: str, max_count: int) -> None:
    if name == "_count":
        req.count = _int("_count", raw, 0, max_count)
    elif name == "_offset":
        req.offset = _int("_offset", raw, 0, 10_000_000)
    elif name == "_sort":
        for key in raw.split(","):
            desc = key.startswith("-")
            pname = key[1:] if desc else key
            if pname not in ("_id", "_lastUpdated") and lookup(req.resource_type, pname) is None:
                raise bad_request(f"Unknown _sort parameter '{pname}' for {req.resource_type}")
            req.sort.append((pname, desc))
    elif name in ("_include", "_revinclude"):
        if raw == "*":
            raise bad_request(f"{name}=* is not supported; name the parameter")
        parts = raw.split(":")
        if len(parts) not in (2, 3):
            raise bad_request(f"{name} must look like Type:param[:TargetType], not '{raw}'")
        source, pname = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        p = lookup(source, pname)
        if p is None or p.type != "reference":
            raise bad_request(f"{name}: '{source}:{pname}' is not a reference search parameter")
        if name == "_include" and source != req.resource_type and modifier != "iterate":
            raise bad_request(f"_include source type must be {req.resource_type}, not {source}")
        inc = Include(source, pname, target, modifier in ("iterate", "recurse"))
        (req.include if name == "_include" else req.revinclude).append(inc)
    elif name == "_summary":
        if raw not in ("true", "false", "count", "data", "text"):
            raise bad_request(f"_summary must be true, false, count, data or text, not '{raw}'")
        req.summary = raw
    elif name == "_total":
        if raw not in ("none", "estimate", "accurate"):
            raise bad_request(f"_total must be none, estimate or accurate, not '{raw}'")
        req.total = raw
    elif name == "_totalMethod":
        req.total = "accurate"
    elif name == "_elements":
        req.elements = [e.strip() for e in raw.split(",") if e.strip()]
    elif name in ("_contained", "_containedType"):
        raise bad_request(f"{name} is not supported")
    # _format and _pretty are accepted and ignored: JSON is the only format.
