"""The FHIR RESTful API (R4 http.html) without a web framework.

A plain request and a repository in, a status, headers and a body out; FastAPI,
the CLI and jobs are thin adapters around it, and unit tests run it without HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from medcard.audit import events as audit_events
from medcard.audit.recorder import DENIED
from medcard.clock import format_instant
from medcard.fhir import bundles, capability, jsonio
from medcard.fhir.outcomes import FhirError, Issue, bad_request, information, outcome
from medcard.fhir.search.params import SearchRequest, parse
from medcard.fhir.search.values import date_range
from medcard.fhir.store.repository import HistoryEntry, Repository, Stored, check_type
from medcard.fhir.summary import shape

JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


@dataclass
class FhirRequest:
    method: str
    path: str  # below the FHIR base, no leading slash: "Patient/1/_history/2"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base_url: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class FhirResponse:
    status: int
    body: Any = None  # dict, raw JSON bytes, or None
    headers: dict[str, str] = field(default_factory=dict)

    def body_bytes(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return jsonio.dumps(self.body)


def http_date(us: int) -> str:
    return formatdate(us / 1_000_000, usegmt=True)


class Router:
    def __init__(self, default_count: int = 50, max_count: int = 1000) -> None:
        self.default_count = default_count
        self.max_count = max_count

    def handle(self, req: FhirRequest, repo: Repository) -> FhirResponse:
        try:
            return self._dispatch(req, repo)
        except FhirError as exc:
            return FhirResponse(exc.status, exc.as_outcome(), dict(exc.headers))

    # -- dispatch -----------------------------------------------------------------

    def _dispatch(self, req: FhirRequest, repo: Repository) -> FhirResponse:
        parts = [p for p in req.path.split("/") if p]
        m = req.method.upper()
        n = len(parts)
        if n == 0:
            if m == "POST":
                return self._bundle(req, repo)
            raise FhirError(
                400, "not-supported", "Search across all types is not supported; name a type"
            )
        if parts[0] == "metadata" and n == 1 and m == "GET":
            return FhirResponse(200, capability.statement(req.base_url))
        if parts[0] == "_history" and n == 1 and m == "GET":
            return self._history(req, repo, None, None)
        rtype = parts[0]
        check_type(rtype)
        if rtype == "AuditEvent":
            return self._audit_events(req, repo, parts[1:], m)
        if n == 1:
            if m == "GET":
                return self._search(req, repo, rtype, req.query)
            if m == "POST":
                return self._create(req, repo, rtype)
            if m == "PUT" and req.query:
                return self._conditional_update(req, repo, rtype)
            if m == "DELETE" and req.query:
                return self._conditional_delete(req, repo, rtype)
        elif n == 2:
            second = parts[1]
            if second == "_search" and m == "POST":
                return self._search(req, repo, rtype, [*req.query, *self._form(req)])
            if second == "_history" and m == "GET":
                return self._history(req, repo, rtype, None)
            if second.startswith("$"):
                raise FhirError(
                    400, "not-supported", f"Operation {second} is not supported on {rtype}"
                )
            if m == "GET":
                return self._read(req, repo, rtype, second)
            if m == "PUT":
                return self._update(req, repo, rtype, second)
            if m == "DELETE":
                return self._delete(repo, rtype, second)
        elif n == 3 and parts[2] == "_history" and m == "GET":
            return self._history(req, repo, rtype, parts[1])
        elif n == 3 and parts[2] == "$everything" and rtype == "Patient" and m in ("GET", "POST"):
            return self._everything(req, repo, parts[1])
        elif n == 3 and parts[2] == "$break-glass" and rtype == "Patient" and m == "POST":
            return self._break_glass(req, repo, parts[1])
        elif n == 3 and parts[2].startswith("$"):
            raise FhirError(
                400, "not-supported", f"Operation {parts[2]} is not supported on {rtype}"
            )
        elif n == 4 and parts[2] == "_history" and m == "GET":
            stored = repo.vread(rtype, parts[1], parts[3])
            return self._resource(stored, 200, req)
        raise FhirError(
            405 if n <= 2 else 404,
            "not-supported",
            f"{m} /{req.path} is not a FHIR interaction this server supports",
        )

    # -- helpers ------------------------------------------------------------------

    def _json_body(self, req: FhirRequest) -> Any:
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if ctype and ctype not in JSON_TYPES:
            raise FhirError(
                415,
                "not-supported",
                f"Content-Type '{ctype}' is not supported; send application/fhir+json",
            )
        if not req.body.strip():
            raise bad_request("The request has no body")
        try:
            body = jsonio.check(req.body)
        except jsonio.JSONDecodeError as exc:
            raise bad_request(f"The body is not valid JSON: {exc}") from None
        if _deeper_than(body, MAX_JSON_DEPTH):
            # orjson reads up to 1,024 levels; the recursive walks after it (validation,
            # references) would exhaust Python's stack first (a 500, found by the
            # reliability battery).  Real resources nest a few dozen levels at most.
            raise bad_request(f"The body nests deeper than {MAX_JSON_DEPTH} levels")
        # read again keeping each decimal's text (R4 datatypes.html#decimal)
        return jsonio.lexical(req.body)

    def _form(self, req: FhirRequest) -> list[tuple[str, str]]:
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise FhirError(
                415, "not-supported", "POST _search needs application/x-www-form-urlencoded"
            )
        try:
            return parse_qsl(req.body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise bad_request("The form body is not UTF-8") from None

    def _prefer(self, req: FhirRequest, key: str) -> str | None:
        for part in (req.header("prefer") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name.strip() == key:
                return value.strip().strip('"')
        return None

    def _resource(self, stored: Stored, status: int, req: FhirRequest) -> FhirResponse:
        headers = {
            "ETag": stored.etag,
            "Last-Modified": http_date(stored.last_updated),
        }
        elements = [v for k, v in req.query if k == "_elements"]
        summary = next((v for k, v in req.query if k == "_summary"), None)
        if elements or summary:
            body: Any = shape(stored.exact(), summary, elements[0].split(",") if elements else [])
            return FhirResponse(status, body, headers)
        return FhirResponse(status, stored.content, headers)

    def _write_response(
        self, req: FhirRequest, stored: Stored, status: int, warnings: list[Issue]
    ) -> FhirResponse:
        headers = {
            "ETag": stored.etag,
            "Last-Modified": http_date(stored.last_updated),
            "Location": f"{req.base_url}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}",
        }
        ret = self._prefer(req, "return") or "representation"
        if ret == "minimal":
            return FhirResponse(status, None, headers)
        if ret == "OperationOutcome":
            text = f"{stored.resource_type}/{stored.id} version {stored.version_id} stored"
            return FhirResponse(
                status, outcome(Issue("information", "informational", text), *warnings), headers
            )
        if warnings:
            # The resource is what the client asked for; warnings ride in a header-free way
            # only in the OperationOutcome form, so mention them there too.
            headers["X-FHIR-Warnings"] = str(len(warnings))
        return FhirResponse(status, stored.content, headers)

    # -- interactions -------------------------------------------------------------

    def _read(self, req: FhirRequest, repo: Repository, rtype: str, rid: str) -> FhirResponse:
        stored = repo.read(rtype, rid)
        if_none_match = req.header("if-none-match")
        if if_none_match and if_none_match.strip() == stored.etag:
            return FhirResponse(304, None, {"ETag": stored.etag})
        return self._resource(stored, 200, req)

    def _create(self, req: FhirRequest, repo: Repository, rtype: str) -> FhirResponse:
        stray = sorted({k for k, _ in req.query if k not in ("_format", "_pretty")})
        if stray:
            # Some clients send conditional-create criteria as a query string; ignoring
            # them would create the duplicate the client meant to avoid (R4 http.html#ccreate).
            raise bad_request(
                f"POST {rtype} takes no search parameters ({', '.join(stray)}); "
                "send conditional-create criteria in the If-None-Exist header"
            )
        body = self._json_body(req)
        if isinstance(body, dict) and body.get("resourceType") != rtype:
            from medcard.fhir.validation import check_resource_type

            check_resource_type(body, rtype)
        with repo.unit_of_work():
            result = repo.create(body, if_none_exist=req.header("if-none-exist"))
        return self._write_response(req, result.stored, result.status, result.warnings)

    def _update(self, req: FhirRequest, repo: Repository, rtype: str, rid: str) -> FhirResponse:
        body = self._json_body(req)
        with repo.unit_of_work():
            result = repo.update(rtype, rid, body, if_match=req.header("if-match"))
        return self._write_response(req, result.stored, result.status, result.warnings)

    def _conditional_update(self, req: FhirRequest, repo: Repository, rtype: str) -> FhirResponse:
        body = self._json_body(req)
        with repo.unit_of_work():
            result = repo.conditional_update(rtype, urlencode(req.query), body)
        return self._write_response(req, result.stored, result.status, result.warnings)

    def _delete(self, repo: Repository, rtype: str, rid: str) -> FhirResponse:
        with repo.unit_of_work():
            stored = repo.delete(rtype, rid)
        headers = {"ETag": stored.etag} if stored is not None and stored.deleted else {}
        return FhirResponse(200, information(f"{rtype}/{rid} deleted"), headers)

    def _conditional_delete(self, req: FhirRequest, repo: Repository, rtype: str) -> FhirResponse:
        search = parse(rtype, req.query, default_count=2, max_count=2)
        search.count = 2
        with repo.unit_of_work():
            found = repo.search(search).matches
            if len(found) > 1:
                raise FhirError(
                    412, "multiple-matches", f"The criteria match {len(found)} {rtype} resources"
                )
            for f in found:
                repo.delete(rtype, f.id)
        return FhirResponse(200, information(f"{len(found)} {rtype} deleted"))

    def _search(
        self, req: FhirRequest, repo: Repository, rtype: str, query: list[tuple[str, str]]
    ) -> FhirResponse:
        lenient = (self._prefer(req, "handling") or "strict") == "lenient"
        search = parse(
            rtype,
            query,
            default_count=self.default_count,
            max_count=self.max_count,
            lenient=lenient,
        )
        result = repo.search(search)
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if result.total is not None:
            bundle["total"] = result.total
        bundle["link"] = self._links(req.base_url, rtype, query, search, len(result.matches))
        entries = [self._entry(req.base_url, s, "match", search) for s in result.matches]
        entries += [self._entry(req.base_url, s, "include", search) for s in result.included]
        if search.warnings:
            entries.append({"resource": outcome(*search.warnings), "search": {"mode": "outcome"}})
        if entries:
            bundle["entry"] = entries
        return FhirResponse(200, bundle)

    def _entry(self, base: str, s: Stored, mode: str, search: SearchRequest) -> dict[str, Any]:
        if search.elements or search.summary in ("true", "text", "data"):
            resource: Any = shape(
                s.exact(), search.summary, search.elements if mode == "match" else []
            )
        else:
            resource = orjson.Fragment(s.content)
        return {
            "fullUrl": f"{base}/{s.resource_type}/{s.id}",
            "resource": resource,
            "search": {"mode": mode},
        }

    def _links(
        self, base: str, rtype: str, query: list[tuple[str, str]], search: SearchRequest, got: int
    ) -> list[dict[str, str]]:
        kept = [(k, v) for k, v in query if k not in ("_offset", "_count")]

        def url(offset: int) -> str:
            q = [*kept, ("_count", str(search.count)), ("_offset", str(offset))]
            return f"{base}/{rtype}?{urlencode(q)}"

        links = [{"relation": "self", "url": url(search.offset)}]
        if search.summary != "count" and got >= search.count > 0:
            links.append({"relation": "next", "url": url(search.offset + search.count)})
        if search.offset > 0:
            links.append({"relation": "previous", "url": url(max(0, search.offset - search.count))})
        return links

    def _since(self, req: FhirRequest) -> int | None:
        since = next((v for k, v in req.query if k == "_since"), None)
        if since is None:
            return None
        try:
            return date_range(since)[0]
        except ValueError:
            raise bad_request(f"_since must be an instant, not '{since}'") from None

    def _paging(self, req: FhirRequest, default: int) -> tuple[int, int]:
        from medcard.fhir.search.params import _int

        count, offset = default, 0
        for k, v in req.query:
            if k == "_count":
                count = _int("_count", v, 1, self.max_count)
            elif k == "_offset":
                offset = _int("_offset", v, 0, 10_000_000)
        return count, offset

    def _history(
        self, req: FhirRequest, repo: Repository, rtype: str | None, rid: str | None
    ) -> FhirResponse:
        count, offset = self._paging(req, self.default_count)
        entries, total = repo.history(
            rtype, rid, since=self._since(req), count=count, offset=offset
        )
        path = "/".join(p for p in (rtype, rid, "_history") if p)
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "history",
            "total": total,
            "link": self._plain_links(req, path, count, offset, total),
            "entry": [self._history_entry(req.base_url, e) for e in entries],
        }
        return FhirResponse(200, bundle)

    def _plain_links(
        self, req: FhirRequest, path: str, count: int, offset: int, total: int
    ) -> list[dict[str, str]]:
        kept = [(k, v) for k, v in req.query if k not in ("_offset", "_count")]

        def url(off: int) -> str:
            return f"{req.base_url}/{path}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(off))])}"

        links = [{"relation": "self", "url": url(offset)}]
        if offset + count < total:
            links.append({"relation": "next", "url": url(offset + count)})
        if offset > 0:
            links.append({"relation": "previous", "url": url(max(0, offset - count))})
        return links

    def _history_entry(self, base: str, e: HistoryEntry) -> dict[str, Any]:
        s = e.stored
        url = f"{s.resource_type}/{s.id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
        if not s.deleted:
            entry["resource"] = orjson.Fragment(s.content)
        entry["request"] = {
            "method": e.method,
            "url": url if e.method != "POST" else s.resource_type,
        }
        entry["response"] = {
            "status": "204" if s.deleted else ("201" if s.version_id == 1 else "200"),
            "etag": s.etag,
            "lastModified": format_instant(s.last_updated),
        }
        return entry

    def _break_glass(self, req: FhirRequest, repo: Repository, pid: str) -> FhirResponse:
        """Patient/{id}/$break-glass: emergency access with a stated reason (Parameters)."""
        from medcard.access import break_glass

        body = self._json_body(req)
        params = body.get("parameter", []) if isinstance(body, dict) else []
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise bad_request(
                "$break-glass takes a Parameters resource with 'reason' (and 'minutes')"
            )
        values = {p.get("name"): p for p in params if isinstance(p, dict)}
        reason = str(values.get("reason", {}).get("valueString", ""))
        minutes = values.get("minutes", {}).get("valueInteger", break_glass.DEFAULT_MINUTES)
        if not isinstance(minutes, int) or isinstance(minutes, bool):
            raise bad_request("'minutes' must be an integer")
        grant = break_glass.grant(repo.engine, repo.ctx, pid, reason, minutes)
        return FhirResponse(
            200,
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "patient", "valueReference": {"reference": f"Patient/{pid}"}},
                    {"name": "expires", "valueInstant": format_instant(grant.expires)},
                ],
            },
        )

    def _everything(self, req: FhirRequest, repo: Repository, pid: str) -> FhirResponse:
        count, offset = self._paging(req, self.max_count)
        types_param = next((v for k, v in req.query if k == "_type"), None)
        types = [t.strip() for t in types_param.split(",")] if types_param else None
        for t in types or []:
            check_type(t)
        found, total = repo.everything(
            pid, since=self._since(req), types=types, count=count, offset=offset
        )
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": self._plain_links(req, f"Patient/{pid}/$everything", count, offset, total),
            "entry": [
                {
                    "fullUrl": f"{req.base_url}/{s.resource_type}/{s.id}",
                    "resource": orjson.Fragment(s.content),
                    "search": {"mode": "match"},
                }
                for s in found
            ],
        }
        return FhirResponse(200, bundle)

    def _audit_events(
        self, req: FhirRequest, repo: Repository, rest: list[str], method: str
    ) -> FhirResponse:
        """AuditEvent is the audit log itself: readable and searchable, never written.

        Reading the log is recorded like any other read (interaction read or search on
        type AuditEvent, about the card the caller is confined to or asked about).
        """
        if method != "GET" or len(rest) > 1 or (rest and rest[0].startswith("_")):
            raise FhirError(
                405, "not-supported", "AuditEvent is read-only: the audit log cannot be changed"
            )
        interaction = "read" if rest else "search"
        about = audit_events.scoped_patient(repo.ctx)
        if not about and not rest:
            asked = [v for k, v in req.query if k.partition(":")[0] == "patient"]
            if len(asked) == 1 and "," not in asked[0]:
                about = asked[0].rpartition("/")[2]
        try:
            if rest:
                event = audit_events.read(repo.engine, repo.ctx, rest[0])
                about = about or audit_events.patient_of(event)
                repo.audit.add("read", "AuditEvent", rest[0], about)
                return FhirResponse(200, event)
            page = audit_events.search(repo.engine, repo.ctx, req.query, self.max_count)
        except FhirError as exc:
            if exc.status in (403, 404):
                repo.audit.add(
                    interaction,
                    "AuditEvent",
                    rest[0] if rest else "",
                    about,
                    DENIED,
                    exc.diagnostics,
                )
            raise
        repo.audit.add("search", "AuditEvent", "", about, detail=urlencode(req.query)[:500])
        kept = [(k, v) for k, v in req.query if k not in ("_offset", "_count", "_snapshot")]

        def url(off: int) -> str:
            q = [*kept, ("_count", str(page.count)), ("_offset", str(off))]
            return f"{req.base_url}/AuditEvent?{urlencode([*q, ('_snapshot', str(page.snapshot))])}"

        links = [{"relation": "self", "url": url(page.offset)}]
        if page.count > 0 and page.offset + page.count < page.total:
            links.append({"relation": "next", "url": url(page.offset + page.count)})
        if page.offset > 0:
            links.append(
                {"relation": "previous", "url": url(max(0, page.offset - max(page.count, 1)))}
            )
        return FhirResponse(
            200,
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": page.total,
                "link": links,
                "entry": [
                    {
                        "fullUrl": f"{req.base_url}/AuditEvent/{e['id']}",
                        "resource": e,
                        "search": {"mode": "match"},
                    }
                    for e in page.events
                ],
            },
        )

    def _bundle(self, req: FhirRequest, repo: Repository) -> FhirResponse:
        body = self._json_body(req)
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            raise bad_request("POST to the base needs a Bundle of type batch or transaction")
        kind = body.get("type")
        representation = (self._prefer(req, "return") or "minimal") == "representation"

        def get(url: str, method: str) -> tuple[int, Any]:
            path, _, qs = url.partition("?")
            sub = FhirRequest(
                method, path, parse_qsl(qs, keep_blank_values=True), {}, b"", req.base_url
            )
            resp = self._dispatch(sub, repo)
            body = jsonio.lexical(resp.body) if isinstance(resp.body, bytes) else resp.body
            return resp.status, body

        if kind == "transaction":
            result = bundles.run_transaction(repo, body, get, representation)
        elif kind == "batch":
            result = bundles.run_batch(repo, body, get, representation)
        else:
            raise bad_request(
                f"Bundle.type must be batch or transaction, not '{kind}'", "Bundle.type"
            )
        return FhirResponse(200, result)


MAX_JSON_DEPTH = 100


def _deeper_than(node: Any, limit: int) -> bool:
    """Whether JSON nests deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False
