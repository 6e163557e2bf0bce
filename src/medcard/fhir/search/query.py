"""Build SQL from a parsed search: one predicate per filter over the typed index tables.

Access restrictions arrive as a patient set and become a ``patient_id`` predicate, so
no search can return rows outside the caller's compartments.  When a query is bound
to a patient (by restriction or by a ``patient=`` filter on the compartment-defining
parameter), filters are correlated EXISTS probes, cheap per candidate row of that
patient; otherwise they are IN-subqueries the planner can drive from the index.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
)

from medcard.access.policy import Restriction, in_patient_compartment
from medcard.db.sql import by_resource
from medcard.db.tables import INDEX_TABLES, resources
from medcard.fhir import spec
from medcard.fhir.outcomes import bad_request
from medcard.fhir.search.params import Filter, SearchRequest, split_prefix
from medcard.fhir.search.paths import reference_type
from medcard.fhir.search.registry import SearchParam, lookup
from medcard.fhir.search.values import MAX_US, date_range, fold, number_range

r = resources


def restriction_clause(
    restriction: Restriction, resource_type: str, patient_id: Any = None, resource_id: Any = None
) -> ColumnElement[bool]:
    """The rows of ``resource_type`` a restriction lets through, on ``resources`` or an index."""
    if restriction.patients is None:
        return true()
    column = r.c.patient_id if patient_id is None else patient_id
    ids = r.c.id if resource_id is None else resource_id
    parts: list[ColumnElement[bool]] = []
    if restriction.patients:
        parts.append(column.in_(sorted(restriction.patients)))
    if restriction.related is not None:
        parts.append(column.in_(restriction.related))
    if restriction.entries is not None:
        parts.append(tuple_(literal(resource_type), ids).in_(restriction.entries))
    if restriction.shared and not in_patient_compartment(resource_type):
        parts.append(column == "")
    return or_(*parts) if parts else false()


Chained = Mapping[str, Restriction]


def where_clauses(
    req: SearchRequest,
    restriction: Restriction,
    base_url: str = "",
    *,
    chained: Chained | None = None,
) -> list[ColumnElement[bool]]:
    """``chained`` holds the caller's restriction for each type a chain reaches into:
    ``Observation?subject:Patient.name=x`` tests Patient rows, so it may test only the
    Patient rows the caller may search.  Without it, chains keep to the compartments
    of ``restriction``."""
    if chained is None:
        same = Restriction(restriction.patients)
        chained = {f.chain.target_type: same for f in req.filters if f.chain is not None}
    rtype = req.resource_type
    # Entries withdrawn as entered-in-error (issue 7) match no search, for anyone.
    clauses: list[ColumnElement[bool]] = [
        r.c.resource_type == rtype,
        r.c.deleted == false(),
        r.c.hidden == false(),
    ]
    if restriction.patients is not None:
        clauses.append(restriction_clause(restriction, rtype))
    patients = _bound_patients(req)
    if patients:
        clauses.append(r.c.patient_id.in_(patients))
    correlated = restriction.patients is not None or bool(patients)
    for f in req.filters:
        if patients and f.modifier is None and f.chain is None and f.type in PATIENT_INDEXED:
            # Pinned to a patient: the per-patient index yields exactly this card's rows
            # with the value, instead of probing every resource of the card.
            t = INDEX_TABLES[f.type]
            conds = [_value_cond(f.type, None, v, t, f.param, base_url) for v in f.values]
            clauses.append(
                r.c.id.in_(
                    select(t.c.resource_id).where(
                        t.c.patient_id.in_(patients),
                        t.c.resource_type == rtype,
                        t.c.param == f.name,
                        or_(*conds),
                    )
                )
            )
            continue
        clauses.append(_filter(f, rtype, correlated, base_url, chained))
    return clauses


# Index tables with a (patient_id, resource_type, param, ...) index.
PATIENT_INDEXED = frozenset({"token", "reference", "date"})


def _bound_patients(req: SearchRequest) -> list[str]:
    """Patient ids a filter on the compartment-defining parameter pins the search to.

    ``Observation?patient=123`` can only match rows filed under compartment 123, so
    adding ``patient_id IN (123)`` is redundant for correctness but lets the planner
    use the per-patient index.
    """
    comp = spec.patient_compartment().get(req.resource_type)
    if not comp:
        return []
    first = lookup(req.resource_type, comp[0])
    if first is None:
        return []
    first_steps = {_head(p) for p in first.paths}
    for f in req.filters:
        if f.type != "reference" or f.modifier not in (None, "Patient") or f.chain or not f.param:
            continue
        if not {_head(p) for p in f.param.paths} <= first_steps:
            continue
        ids = []
        for v in f.values:
            if "/" in v:
                if v.count("/") != 1 or not v.startswith("Patient/"):
                    break
                ids.append(v.split("/", 1)[1])
            elif f.param.targets == ("Patient",) or f.modifier == "Patient":
                ids.append(v)
            else:
                break
        else:
            return ids
    return []


def _head(path: Any) -> str:
    step = path[0]
    name = step if isinstance(step, str) else step["name"]
    return str(name)


def _probe(
    f: Filter, rtype: str, correlated: bool, *conds: ColumnElement[bool], param: str | None = None
) -> ColumnElement[bool]:
    t = INDEX_TABLES[f.chain.param.type if f.chain else f.type]
    name = param or f.name
    if correlated:
        return exists(
            select(literal(1))
            .select_from(t)
            .where(
                t.c.resource_type == rtype,
                t.c.resource_id == r.c.id,
                by_resource(t.c.param) == name,
                *conds,
            )
        )
    return r.c.id.in_(
        select(t.c.resource_id).where(t.c.resource_type == rtype, t.c.param == name, *conds)
    )


def _filter(
    f: Filter, rtype: str, correlated: bool, base_url: str, chained: Chained
) -> ColumnElement[bool]:
    if f.name == "_id":
        cond = r.c.id.in_(list(f.values))
        return not_(cond) if f.modifier == "not" else cond
    if f.name == "_lastUpdated":
        return or_(*(_date_cond(v, r.c.last_updated, r.c.last_updated) for v in f.values))
    if f.modifier == "missing":
        t = INDEX_TABLES[f.type]
        has = exists(
            select(literal(1))
            .select_from(t)
            .where(
                t.c.resource_type == rtype,
                t.c.resource_id == r.c.id,
                by_resource(t.c.param) == f.name,
            )
        )
        return not_(has) if f.values[-1] == "true" else has
    if f.chain is not None:
        return _chained(f, rtype, correlated, chained[f.chain.target_type])
    t = INDEX_TABLES[f.type]
    value_conds = [_value_cond(f.type, f.modifier, v, t, f.param, base_url) for v in f.values]
    if f.modifier == "not":
        return not_(_probe(f, rtype, True, or_(*value_conds)))
    return _probe(f, rtype, correlated, or_(*value_conds))


def _chained(
    f: Filter, rtype: str, correlated: bool, target_restriction: Restriction
) -> ColumnElement[bool]:
    assert f.chain is not None
    target = f.chain.param
    tt = INDEX_TABLES[target.type]
    inner_conds = [_value_cond(target.type, None, v, tt, target, "") for v in f.values]
    targets = select(tt.c.resource_id).where(
        tt.c.resource_type == f.chain.target_type,
        tt.c.param == target.name,
        or_(*inner_conds),
        restriction_clause(
            target_restriction, f.chain.target_type, tt.c.patient_id, tt.c.resource_id
        ),
    )
    ref = INDEX_TABLES["reference"]
    return _probe(
        Filter(f.name, "reference", f.param, None, f.values),
        rtype,
        correlated,
        ref.c.target_type == f.chain.target_type,
        ref.c.target_id.in_(targets),
    )


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _value_cond(
    ptype: str,
    modifier: str | None,
    value: str,
    t: Any,
    param: SearchParam | None,
    base_url: str,
) -> ColumnElement[bool]:
    if ptype == "token":
        if "|" in value:
            system, code = value.split("|", 1)
            conds = []
            conds.append(t.c.system.is_(None) if system == "" else t.c.system == system)
            if code:
                conds.append(t.c.code == code)
            return and_(*conds)
        return t.c.code == value  # type: ignore[no-any-return]
    if ptype == "string":
        if modifier == "exact":
            return t.c.exact == value  # type: ignore[no-any-return]
        folded = _like_escape(fold(value))
        pattern = f"%{folded}%" if modifier == "contains" else f"{folded}%"
        return t.c.value.like(pattern, escape="\\")  # type: ignore[no-any-return]
    if ptype == "date":
        return _date_cond(value, t.c.low, t.c.high)
    if ptype == "reference":
        return _reference_cond(value, modifier, t, param, base_url)
    if ptype in ("number", "quantity"):
        prefix, rest = split_prefix(value)
        number, system, code = rest, "", ""
        if ptype == "quantity" and "|" in rest:
            number, system, code = ([*rest.split("|"), "", ""])[:3]
        cond = _number_cond(prefix, number, t.c.value)
        extra = []
        if system:
            extra.append(t.c.system == system)
        if code:
            extra.append(t.c.code == code)
        return and_(cond, *extra)
    if ptype == "uri":
        if modifier == "below":
            return t.c.value.like(_like_escape(value) + "%", escape="\\")  # type: ignore[no-any-return]
        return t.c.value == value  # type: ignore[no-any-return]
    raise bad_request(f"Unsupported search parameter type {ptype}")


def _reference_cond(
    value: str, modifier: str | None, t: Any, param: SearchParam | None, base_url: str
) -> ColumnElement[bool]:
    if base_url and value.startswith(base_url.rstrip("/") + "/"):
        value = value[len(base_url.rstrip("/")) + 1 :]
    if value.startswith(("http://", "https://", "urn:")):
        return t.c.url == value  # type: ignore[no-any-return]
    if "/" in value:
        parts = value.split("/")
        if len(parts) == 4 and parts[2] == "_history":
            parts = parts[:2]
        if len(parts) != 2 or reference_type(value) is None:
            raise bad_request(f"'{value}' is not a reference of the form Type/id")
        return and_(t.c.target_type == parts[0], t.c.target_id == parts[1])
    if modifier:
        return and_(t.c.target_type == modifier, t.c.target_id == value)
    if param is not None and len(param.targets) == 1:
        return and_(t.c.target_type == param.targets[0], t.c.target_id == value)
    return t.c.target_id == value  # type: ignore[no-any-return]


def _number_cond(prefix: str, number: str, col: Any) -> ColumnElement[bool]:
    v, low, high = number_range(number)
    if prefix == "eq":
        return and_(col >= low, col < high)
    if prefix == "ne":
        return or_(col < low, col >= high)
    if prefix in {"gt", "sa"}:
        return col > v  # type: ignore[no-any-return]
    if prefix in {"lt", "eb"}:
        return col < v  # type: ignore[no-any-return]
    if prefix == "ge":
        return col >= v  # type: ignore[no-any-return]
    if prefix == "le":
        return col <= v  # type: ignore[no-any-return]
    spread = abs(v) * 0.1
    return and_(col >= v - spread, col <= v + spread)


def _date_cond(value: str, low_col: Any, high_col: Any) -> ColumnElement[bool]:
    """R4 3.1.1.4.3: compare the target's range with the range the search value covers."""
    prefix, text = split_prefix(value)
    low, high = date_range(text)
    if prefix == "eq":
        return and_(low_col >= low, high_col <= high)
    if prefix == "ne":
        return or_(low_col < low, high_col > high)
    if prefix == "gt":
        return high_col > high  # type: ignore[no-any-return]
    if prefix == "lt":
        return low_col < low  # type: ignore[no-any-return]
    if prefix == "ge":
        return high_col >= low  # type: ignore[no-any-return]
    if prefix == "le":
        return low_col <= high  # type: ignore[no-any-return]
    if prefix == "sa":
        return low_col > high  # type: ignore[no-any-return]
    if prefix == "eb":
        return high_col < low  # type: ignore[no-any-return]
    # ap: within 10 % of the distance from now, at least a day either side
    now = time.time_ns() // 1000
    slack = max(abs(now - low) // 10, 86_400_000_000)
    return and_(high_col >= low - slack, low_col <= min(high + slack, MAX_US))


def _sort_column(ptype: str, t: Any, desc: bool) -> Any:
    if ptype == "date":
        return t.c.high if desc else t.c.low
    if ptype == "token":
        return t.c.code
    if ptype == "reference":
        return t.c.target_id
    return t.c.value


def order_by(req: SearchRequest) -> list[Any]:
    keys: list[Any] = []
    for name, desc in req.sort:
        if name == "_id":
            col: Any = r.c.id
        elif name == "_lastUpdated":
            col = r.c.last_updated
        else:
            param = lookup(req.resource_type, name)
            assert param is not None
            t = INDEX_TABLES[param.type]
            value_col = _sort_column(param.type, t, desc)
            agg = func.max if desc else func.min
            col = (
                select(agg(value_col))
                .where(
                    t.c.resource_type == req.resource_type,
                    t.c.resource_id == r.c.id,
                    t.c.param == name,
                )
                .scalar_subquery()
            )
        keys.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
    if not req.sort:
        keys.append(r.c.last_updated.desc())
    keys.append(r.c.id.asc())
    return keys


def search_statement(
    req: SearchRequest,
    restriction: Restriction,
    base_url: str = "",
    *,
    chained: Chained | None = None,
) -> Select[Any]:
    return (
        select(r.c.id, r.c.content)
        .where(*where_clauses(req, restriction, base_url, chained=chained))
        .order_by(*order_by(req))
        .limit(req.count)
        .offset(req.offset)
    )


def count_statement(
    req: SearchRequest,
    restriction: Restriction,
    base_url: str = "",
    *,
    chained: Chained | None = None,
) -> Select[Any]:
    fast = _index_only_count(req, restriction, base_url)
    if fast is not None:
        return fast
    where = where_clauses(req, restriction, base_url, chained=chained)
    return select(func.count()).select_from(r).where(*where)


def _index_only_count(
    req: SearchRequest, restriction: Restriction, base_url: str
) -> Select[Any] | None:
    """Count straight from one index table when a single plain filter decides the match.

    Index rows exist only for current, undeleted, unwithdrawn resources, so for an unrestricted
    caller and one filter without modifiers or chains the distinct resource ids in the
    index are exactly the matches; the resources table need not be touched.
    """
    if restriction.patients is not None or len(req.filters) != 1:
        return None
    f = req.filters[0]
    if f.param is None or f.modifier is not None or f.chain is not None:
        return None
    t = INDEX_TABLES[f.type]
    conds = [_value_cond(f.type, None, v, t, f.param, base_url) for v in f.values]
    return select(func.count(func.distinct(t.c.resource_id))).where(
        t.c.resource_type == req.resource_type, t.c.param == f.name, or_(*conds)
    )
