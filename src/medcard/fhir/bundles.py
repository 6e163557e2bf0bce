"""batch and transaction Bundles (R4 3.1.0.11).

A transaction is all-or-nothing: one unit of work, processed in the order the spec
prescribes (DELETE, POST, PUT, GET), with ``urn:uuid:`` fullUrls and conditional
references (``Patient?identifier=...``) resolved to real ids before anything is
written, and every local reference checked to exist.  A batch runs each entry in a
unit of work of its own and reports each outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy import false, select

from medcard.audit.recorder import FAILED
from medcard.db.tables import resources
from medcard.fhir import spec
from medcard.fhir.outcomes import FhirError, Issue, bad_request
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository, Stored, WriteResult, new_id
from medcard.fhir.validation import validate

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
MAX_ENTRIES = 10_000


@dataclass
class Entry:
    index: int
    method: str
    url: str
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None


GetHandler = Callable[[str, str], tuple[int, Any]]


def parse_entries(bundle: dict[str, Any]) -> list[Entry]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise bad_request("Bundle.entry must be a list", "Bundle.entry")
    if len(entries) > MAX_ENTRIES:
        raise FhirError(413, "too-costly", f"A Bundle may hold at most {MAX_ENTRIES} entries")
    out = []
    for i, e in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(e, dict):
            raise bad_request(f"{where} must be an object", where)
        req = e.get("request")
        if (
            not isinstance(req, dict)
            or not isinstance(req.get("method"), str)
            or not isinstance(req.get("url"), str)
        ):
            raise bad_request(f"{where}.request needs a method and a url", f"{where}.request")
        method = req["method"].upper()
        if method not in ORDER:
            raise bad_request(
                f"{where}.request.method '{req['method']}' is not supported",
                f"{where}.request.method",
            )
        resource = e.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise bad_request(f"{where} ({method}) needs a resource", f"{where}.resource")
        if method == "PATCH":
            raise FhirError(400, "not-supported", f"{where}: PATCH is not supported")
        out.append(
            Entry(
                i,
                method,
                req["url"].lstrip("/"),
                resource,
                e.get("fullUrl"),
                req.get("ifNoneExist"),
                req.get("ifMatch"),
            )
        )
    return out


def _split_url(url: str, method: str) -> tuple[str, str | None, str | None]:
    """'Patient' -> (Patient, None, None); 'Patient/1' -> id; 'Patient?x=y' -> query.

    A write names a type (POST) or one resource (PUT, DELETE); anything longer, such
    as 'Patient/1/x', is refused rather than read as 'Patient/1'.  GETs go to the router.
    """
    path, _, query = url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise bad_request(f"Entry url '{url}' names no resource type")
    if method != "GET" and len(parts) > (1 if method == "POST" else 2):
        raise bad_request(f"Entry url '{url}' is not a valid {method} target")
    rid = parts[1] if len(parts) > 1 else None
    return parts[0], rid, query or None


def _walk_references(node: Any, fn: Callable[[str], str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                node[key] = fn(value)
            else:
                _walk_references(value, fn)
    elif isinstance(node, list):
        for item in node:
            _walk_references(item, fn)


def _outcome_status(result: WriteResult) -> str:
    return "201 Created" if result.status == 201 else "200 OK"


def _response(stored: Stored, status: str, representation: bool) -> dict[str, Any]:
    from medcard.clock import format_instant

    entry: dict[str, Any] = {
        "fullUrl": f"{stored.resource_type}/{stored.id}",
        "response": {
            "status": status,
            "location": f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}",
            "etag": stored.etag,
            "lastModified": format_instant(stored.last_updated),
        },
    }
    if representation:
        entry["resource"] = orjson.Fragment(stored.content)
    return entry


def run_transaction(
    repo: Repository, bundle: dict[str, Any], get: GetHandler, representation: bool
) -> dict[str, Any]:
    entries = parse_entries(bundle)
    results: dict[int, dict[str, Any]] = {}
    try:
        # Validation is the costliest step and needs no database: do it before the
        # unit of work, so that on SQLite the write lock is held only for the writes.
        checked: dict[int, list[Issue]] = {}
        for e in entries:
            if e.resource is not None and e.method in ("POST", "PUT"):
                try:
                    checked[e.index] = validate(e.resource)
                except FhirError as exc:
                    repo.audit.add("transaction", outcome=FAILED, detail=str(exc)[:500])
                    raise _tag(exc, e.index) from None
        with repo.unit_of_work():
            ids = _assign_ids(repo, entries)
            _rewrite(repo, entries, ids)
            for entry in sorted(entries, key=lambda e: ORDER[e.method]):
                results[entry.index] = _apply(
                    repo, entry, ids, get, representation, checked.get(entry.index)
                )
    except FhirError as exc:
        index = getattr(exc, "entry_index", None)
        if index is not None and not exc.diagnostics.startswith("Bundle.entry"):
            exc.diagnostics = f"Bundle.entry[{index}]: {exc.diagnostics}"
            exc.args = (exc.diagnostics,)
        raise
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [results[i] for i in range(len(entries))],
    }


def _tag(exc: FhirError, index: int) -> FhirError:
    if getattr(exc, "entry_index", None) is None:
        exc.entry_index = index  # type: ignore[attr-defined]
    return exc


def _assign_ids(repo: Repository, entries: list[Entry]) -> dict[str, tuple[str, str, bool]]:
    """fullUrl -> (type, id, exists): ids for POSTs, conditional creates and updates."""
    ids: dict[str, tuple[str, str, bool]] = {}
    for e in entries:
        try:
            if e.method not in ("POST", "PUT") or e.resource is None:
                continue
            rtype, rid, query = _split_url(e.url, e.method)
            if e.resource.get("resourceType") != rtype:
                raise bad_request(
                    f"resourceType '{e.resource.get('resourceType')}' does not match the url '{e.url}'"
                )
            if e.method == "POST":
                existing = None
                if e.if_none_exist:
                    found = repo.conditional_match(rtype, e.if_none_exist, "ifNoneExist")
                    if len(found) > 1:
                        raise FhirError(
                            412,
                            "duplicate",
                            f"ifNoneExist '{e.if_none_exist}' matches {len(found)} resources",
                        )
                    existing = found[0].id if found else None
                assigned = (rtype, existing or new_id(), existing is not None)
            elif query:
                found = repo.conditional_match(rtype, query, "Conditional update")
                if len(found) > 1:
                    raise FhirError(
                        412, "multiple-matches", f"'{e.url}' matches {len(found)} resources"
                    )
                body_id = e.resource.get("id")
                assigned = (rtype, found[0].id if found else str(body_id or new_id()), bool(found))
            else:
                if rid is None:
                    raise bad_request(f"PUT '{e.url}' needs an id or search criteria")
                assigned = (rtype, rid, False)
            if e.full_url:
                if e.full_url in ids:
                    raise bad_request(f"fullUrl '{e.full_url}' appears twice")
                ids[e.full_url] = assigned
            else:
                ids[f"__entry{e.index}"] = assigned
        except FhirError as exc:
            raise _tag(exc, e.index) from None
    return ids


def _match(repo: Repository, rtype: str, query: str) -> list[Stored]:
    if rtype not in spec.resource_types():
        raise bad_request(f"Unknown resource type '{rtype}'")
    req = parse(rtype, parse_qsl(query.split("?", 1)[-1], keep_blank_values=True), default_count=2)
    req.count = 2
    return repo.search(req).matches


def _rewrite(repo: Repository, entries: list[Entry], ids: dict[str, tuple[str, str, bool]]) -> None:
    """Point urn:uuid and conditional references at real ids; check local targets exist."""
    created = {(t, i) for t, i, _ in ids.values()}
    to_check: dict[str, set[str]] = {}
    resolved: dict[str, str] = {}
    bases = {b for b in (_restful_base(u) for u in ids) if b is not None}
    for e in entries:
        if e.resource is None:
            continue

        def fix(ref: str, e: Entry = e) -> str:
            if ref in ids:
                t, i, _ = ids[ref]
                return f"{t}/{i}"
            absolute = _absolute(ref, e.full_url, bases)
            if absolute in ids:
                t, i, _ = ids[absolute]
                return f"{t}/{i}"
            if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
                raise _tag(
                    bad_request(f"Reference '{ref}' matches no fullUrl in the Bundle"), e.index
                )
            if "?" in ref:
                if ref not in resolved:
                    rtype = ref.split("?", 1)[0]
                    found = _match(repo, rtype, ref)
                    if len(found) != 1:
                        raise _tag(
                            FhirError(
                                412 if found else 404,
                                "not-found" if not found else "multiple-matches",
                                f"Conditional reference '{ref}' matches {len(found)} resources",
                            ),
                            e.index,
                        )
                    resolved[ref] = f"{rtype}/{found[0].id}"
                return resolved[ref]
            parts = ref.split("/")
            if (
                len(parts) == 2
                and parts[0] in spec.resource_types()
                and (parts[0], parts[1]) not in created
            ):
                to_check.setdefault(parts[0], set()).add(parts[1])
            return ref

        _walk_references(e.resource, fix)
        full = e.full_url
        if full in ids and e.method == "POST":
            e.resource["id"] = ids[full][1]
    _check_exist(repo, to_check)


_RESTFUL = re.compile(r"(https?://.+?)/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?")


def _restful_base(url: str) -> str | None:
    """The [base] of a RESTful absolute URL ``[base]/[type]/[id]``, else None."""
    m = _RESTFUL.fullmatch(url)
    return m.group(1) if m and m.group(2) in spec.resource_types() else None


def _absolute(ref: str, full_url: str | None, bases: set[str]) -> str | None:
    """A relative ``Type/id`` reference as the absolute URL it means inside a Bundle.

    R4 bundle.html#references: relative to the [base] of the containing entry's
    RESTful fullUrl.  An entry with a urn: fullUrl (or none) has no base of its own; when
    the Bundle's absolute fullUrls all share one base, that base is the server the
    Bundle was written for (as in the spec's Bundle-xds example), so it is used.
    """
    parts = ref.split("/")
    if len(parts) != 2 or parts[0] not in spec.resource_types():
        return None
    base = _restful_base(full_url) if full_url else None
    if base is None and len(bases) == 1:
        base = next(iter(bases))
    return f"{base}/{ref}" if base is not None else None


def _check_exist(repo: Repository, wanted: dict[str, set[str]]) -> None:
    conn = repo._writer()
    for rtype, want in wanted.items():
        have = set(
            conn.execute(
                select(resources.c.id).where(
                    resources.c.resource_type == rtype,
                    resources.c.id.in_(sorted(want)),
                    resources.c.deleted == false(),
                )
            ).scalars()
        )
        missing = sorted(want - have)
        if missing:
            raise FhirError(
                404, "not-found", f"Referenced resource {rtype}/{missing[0]} does not exist"
            )


def _apply(
    repo: Repository,
    e: Entry,
    ids: dict[str, tuple[str, str, bool]],
    get: GetHandler,
    representation: bool,
    validated: list[Issue] | None = None,
) -> dict[str, Any]:
    try:
        rtype, rid, query = _split_url(e.url, e.method)
        if e.method == "POST":
            assert e.resource is not None
            key = e.full_url if e.full_url in ids else f"__entry{e.index}"
            _, assigned, exists = ids[key]
            if exists:
                return _response(repo.read(rtype, assigned), "200 OK", representation)
            result = repo.create({**e.resource, "id": assigned}, rid=assigned, validated=validated)
            return _response(result.stored, _outcome_status(result), representation)
        if e.method == "PUT":
            assert e.resource is not None
            key = e.full_url if e.full_url in ids else f"__entry{e.index}"
            _, target, _ = ids[key]
            if e.resource.get("id") not in (None, target):
                raise bad_request(
                    f"The body's id '{e.resource['id']}' differs from the resource '{e.url}' names"
                )
            result = repo.update(
                rtype,
                target,
                {**e.resource, "id": target},
                if_match=e.if_match,
                validated=validated,
            )
            return _response(result.stored, _outcome_status(result), representation)
        if e.method == "DELETE":
            if query:
                found = _match(repo, rtype, query)
                if len(found) > 1:
                    raise FhirError(
                        412, "multiple-matches", f"'{e.url}' matches {len(found)} resources"
                    )
                targets = [f.id for f in found]
            elif rid is None:
                raise bad_request("DELETE needs an id or search criteria")
            else:
                targets = [rid]
            for target in targets:
                repo.delete(rtype, target)
            return {"response": {"status": "204 No Content"}}
        status, body = get(e.url, "GET")
        entry: dict[str, Any] = {"response": {"status": str(status)}}
        if body is not None:
            entry["resource"] = body
        return entry
    except FhirError as exc:
        raise _tag(exc, e.index) from None


def run_batch(
    repo: Repository, bundle: dict[str, Any], get: GetHandler, representation: bool
) -> dict[str, Any]:
    from medcard.fhir.outcomes import outcome

    entries = parse_entries(bundle)
    out: list[dict[str, Any]] = []
    for e in entries:
        try:
            with repo.unit_of_work():
                ids = _assign_ids(repo, [e])
                _rewrite(repo, [e], ids)
                out.append(_apply(repo, e, ids, get, representation))
        except FhirError as exc:
            out.append(
                {
                    "response": {
                        "status": f"{exc.status}",
                        "outcome": outcome(*exc.issues()),
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}
