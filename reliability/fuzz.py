"""Fuzzers: a FHIR-aware one for ``/fhir`` and schemathesis for the other JSON endpoints.

The FHIR fuzzer draws whole requests from hypothesis strategies that know FHIR: resource
bodies shaped like real resources with wrong types, odd Unicode, NULs and deep nesting
mixed in; Bundles; search strings built from the declared search parameters with every
modifier and prefix; the headers FHIR gives meaning to (If-Match, If-None-Exist,
Prefer, ...).  Every answer must be below 500.  Requests go through ``send`` (an
in-process test client in CI, HTTP to a live server in the long form), so the
same strategies serve both.

The non-FHIR JSON endpoints are described by the application's OpenAPI document plus
the OAuth endpoints (``nonfhir_openapi``), which read raw form bodies and so are not
in FastAPI's generated description; schemathesis generates valid and invalid requests
from that description.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import HypothesisWarning

from medcard.fhir.search.registry import params_for

FHIR = "application/fhir+json"

# What real clients write most; a few more types from the specification, and some
# that do not exist.
TYPES = ["Patient", "Observation", "Condition", "Encounter", "AllergyIntolerance",
         "Immunization", "MedicationRequest", "ServiceRequest", "DiagnosticReport",
         "DocumentReference", "Organization", "Practitioner", "Task", "Consent",
         "FamilyMemberHistory", "RelatedPerson", "AuditEvent", "Bundle"]  # fmt: skip
BOGUS_TYPES = ["Patientt", "patient", "X", "..", "%2e%2e", "Patient%00", "../../etc/passwd"]
MODIFIERS = ["", ":exact", ":contains", ":missing", ":not", ":text", ":above", ":below",
             ":in", ":not-in", ":of-type", ":identifier", ":Patient", ":iterate", ":bogus"]  # fmt: skip
PREFIXES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx"]
RESULT_PARAMS = ["_count", "_sort", "_include", "_revinclude", "_summary", "_elements",
                 "_total", "_since", "_lastUpdated", "_id", "_format", "_offset", "_page",
                 "_has:Observation:subject:code", "_list", "_text", "_content", "_query",
                 "_contained", "_tag", "_profile", "_security", "_at", "_type"]  # fmt: skip
NASTY = ["'", '"', "' OR '1'='1", "1; DROP TABLE resources; --", "%", "_", "\\", "\x00",
         "\u0000abc", "ё", "Ё", "\u202e", "\ud7ff", "😀", "<script>alert(1)</script>",
         "${jndi:ldap://x}", "../../../etc/passwd", "a" * 300, "9" * 40, "-0", "1e309",
         "NaN", "Infinity", "0x10", "1_000", " ", "\t", "\n", "|", "||", "a|b|c", ",", ",,",
         "$", "*", "null", "true", "[]", "{}"]  # fmt: skip
DATES = ["2024", "2024-02", "2024-02-29", "2023-02-29", "2024-13-01", "2024-02-30T10:00",
         "2024-02-10T25:00:00Z", "2024-02-10T10:00:00+14:00", "2024-02-10T10:00:00-99:99",
         "0000", "9999-12-31T23:59:59.999999Z", "10000", "2024-02-10T10:00:00.1234567890Z",
         "2024-02-10T10:00Z", "1900-01-01", "-2024", "2024-1-1"]  # fmt: skip


CYRILLIC = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя "
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."


def text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=max_size),
        st.sampled_from(NASTY),
        st.text(alphabet=CYRILLIC, max_size=20),
    )


def _json_leaf() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        text(),
    )


def any_json(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        _json_leaf(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(text(12), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(alphabet=ID_CHARS, min_size=1, max_size=64),
        st.uuids().map(str),
        text(80),
    )


def references(known: list[str]) -> st.SearchStrategy[Any]:
    plain = st.one_of(
        st.sampled_from(known or ["Patient/none"]),
        st.builds(lambda t, i: f"{t}/{i}", st.sampled_from(TYPES), ids()),
        st.sampled_from(
            [
                "urn:uuid:00000000-0000-0000-0000-000000000000",
                "#contained",
                "http://other.example/fhir/Patient/1",
                "Patient?identifier=x|y",
                "Patient/../../x",
                "",
            ]
        ),
        text(),
    )
    return st.one_of(
        st.builds(lambda r: {"reference": r}, plain),
        st.builds(lambda r, d: {"reference": r, "display": d}, plain, text()),
        any_json(4),
    )


def codings() -> st.SearchStrategy[Any]:
    coding = st.fixed_dictionaries(
        {},
        optional={
            "system": st.one_of(
                st.sampled_from(["http://loinc.org", "urn:oid:1.2.643.5.1.13.13.11.1005"]), text()
            ),
            "code": st.one_of(st.sampled_from(["8867-4", "J45.0", "29463-7"]), text(10)),
            "display": text(),
        },
    )
    return st.one_of(
        st.fixed_dictionaries({"coding": st.lists(coding, max_size=3)}, optional={"text": text()}),
        any_json(4),
    )


def resources(known: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Resource-shaped bodies: mostly plausible, some fields wrong in type or content."""
    value = st.one_of(text(), any_json(6))
    fields = {
        "id": ids(),
        "meta": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "versionId": text(5),
                    "lastUpdated": st.sampled_from(DATES),
                    "tag": st.lists(codings(), max_size=2),
                },
            ),
            any_json(3),
        ),
        "identifier": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "system": st.one_of(
                        st.sampled_from(
                            [
                                "http://gost.ru/2023/snils",
                                "urn:oid:1.2.643.100.3",
                                "urn:oid:1.2.643.5.1.13.13.99.2.205",
                                "urn:test",
                            ]
                        ),
                        text(),
                    ),
                    "value": st.one_of(
                        st.integers(0, 10**11 - 1).map(lambda n: f"{n:011d}"),
                        st.integers(0, 10**16 - 1).map(lambda n: f"{n:016d}"),
                        text(),
                    ),
                },
            ),
            max_size=3,
        ),
        "status": st.one_of(
            st.sampled_from(["final", "active", "completed", "draft", "entered-in-error", "bogus"]),
            value,
        ),
        "name": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "family": text(),
                        "given": st.lists(text(), max_size=3),
                        "text": text(),
                    },
                ),
                max_size=2,
            ),
            value,
        ),
        "gender": st.one_of(
            st.sampled_from(["male", "female", "other", "unknown", "мужской"]), value
        ),
        "birthDate": st.one_of(st.sampled_from(DATES), value),
        "code": codings(),
        "category": st.lists(codings(), max_size=2),
        "subject": references(known),
        "patient": references(known),
        "encounter": references(known),
        "effectiveDateTime": st.one_of(st.sampled_from(DATES), value),
        "valueQuantity": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "value": st.one_of(st.floats(allow_nan=False), st.integers(), text(5)),
                    "unit": text(5),
                    "system": text(),
                    "code": text(5),
                },
            ),
            value,
        ),
        "valueString": text(200),
        "note": st.lists(st.fixed_dictionaries({"text": text(200)}), max_size=2),
        "extension": st.lists(
            st.fixed_dictionaries({"url": text(), "valueString": text()}), max_size=2
        ),
        "contained": st.lists(any_json(6), max_size=2),
        "text": st.one_of(
            st.fixed_dictionaries({"status": st.just("generated"), "div": text(200)}), value
        ),
        "active": st.one_of(st.booleans(), value),
        "deceasedBoolean": st.one_of(st.booleans(), value),
        "performer": st.lists(references(known), max_size=2),
        "basedOn": st.lists(references(known), max_size=2),
        "clinicalStatus": codings(),
        "verificationStatus": codings(),
        "occurrenceDateTime": st.one_of(st.sampled_from(DATES), value),
        "vaccineCode": codings(),
        "intent": st.one_of(st.sampled_from(["order", "plan", "proposal", "zzz"]), value),
    }
    shaped = st.builds(
        lambda rtype, extra, junk: {"resourceType": rtype, **extra, **junk},
        st.one_of(st.sampled_from(TYPES), st.sampled_from(BOGUS_TYPES), text(20)),
        st.fixed_dictionaries({}, optional=fields),
        st.dictionaries(text(15), any_json(3), max_size=2),
    )
    return st.one_of(
        shaped, shaped, shaped, any_json(8).map(lambda j: {"resourceType": "Patient", "x": j})
    )


@cache
def search_pairs(rtype: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    declared = sorted(params_for(rtype)) if rtype in TYPES else []
    name = st.one_of(
        st.sampled_from(declared or ["name"]),
        st.sampled_from(RESULT_PARAMS),
        st.builds(
            lambda a, b: f"{a}.{b}",
            st.sampled_from(declared or ["subject"]),
            st.sampled_from(["name", "identifier", "birthdate", "gender", "bogus"]),
        ),
        text(15),
    )
    value = st.one_of(
        st.builds(lambda p, d: p + d, st.sampled_from(PREFIXES), st.sampled_from(DATES)),
        st.builds(
            lambda p, n: f"{p}{n}",
            st.sampled_from(PREFIXES),
            st.one_of(
                st.integers(),
                st.floats(allow_nan=False),
                st.sampled_from(["1e5", "0.5", "-0", "1.", ".5"]),
            ),
        ),
        st.builds(lambda s, c: f"{s}|{c}", text(20), text(10)),
        st.builds(lambda n, s, c: f"{n}|{s}|{c}", st.integers(-5, 5000), text(10), text(5)),
        st.sampled_from(NASTY),
        text(),
        st.lists(text(10), min_size=2, max_size=4).map(",".join),
    )
    pair = st.builds(lambda n, m, v: (n + m, v), name, st.sampled_from(MODIFIERS), value)
    return st.lists(pair, max_size=5)


@dataclass
class FuzzRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None

    def url(self) -> str:
        q = urlencode(self.query, doseq=False) if self.query else ""
        return "/fhir/" + self.path + ("?" + q if q else "")

    def variants(self, system_token: str) -> list[FuzzRequest]:
        """This request, plus its body created and its query searched on their own type:
        generating a request costs more than sending one, so each draw is used thrice."""
        out = [self]
        rtype = self.path.split("/", 1)[0] or "Patient"
        system = {"Authorization": f"Bearer {system_token}", "Content-Type": FHIR}
        if self.body is not None:
            out.append(FuzzRequest("POST", rtype, [], {**self.headers, **system}, self.body))
        if self.query:
            out.append(FuzzRequest("GET", rtype, self.query, system, None))
        return out


def headers(tokens: dict[str, str]) -> st.SearchStrategy[dict[str, str]]:
    def header_value() -> st.SearchStrategy[str]:
        return st.one_of(
            text(30), st.sampled_from(['W/"1"', '"1"', "W/", "*", 'W/"99999999999999999999"'])
        )

    auth = st.one_of(
        st.sampled_from([f"Bearer {t}" for t in tokens.values()]),
        st.sampled_from(
            ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "bearer x" * 20]
        ),
        text(30).map(lambda t: "Bearer " + t),
    )
    optional = {
        "If-Match": header_value(),
        "If-None-Match": header_value(),
        "If-None-Exist": st.one_of(
            st.builds(
                lambda k, v: f"{k}={v}",
                st.sampled_from(["identifier", "_id", "name", "bogus", ""]),
                text(20),
            ),
            text(20),
        ),
        "If-Modified-Since": st.one_of(
            st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "yesterday"]), text(20)
        ),
        "Prefer": st.sampled_from(
            [
                "return=minimal",
                "return=representation",
                "return=OperationOutcome",
                "handling=strict",
                "handling=lenient",
                "respond-async",
                "bogus",
            ]
        ),
        "Accept": st.sampled_from(
            [
                FHIR,
                "application/json",
                "application/fhir+xml",
                "text/html",
                "*/*",
                "application/fhir+json; fhirVersion=3.0",
                "",
            ]
        ),
        "Content-Type": st.sampled_from(
            [
                FHIR,
                "application/json",
                "application/x-www-form-urlencoded",
                "text/plain",
                "application/fhir+json; charset=latin1",
                "",
            ]
        ),
    }
    return st.builds(
        lambda a, rest: {"Authorization": a, **rest},
        st.one_of(*[st.just(f"Bearer {tokens['system']}")] * 4, auth),
        st.fixed_dictionaries({}, optional=optional),
    ).map(lambda h: {k: v for k, v in h.items() if _latin1(v)})


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\n" not in value and "\r" not in value and "\x00" not in value


def bundles(known: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    entry = st.fixed_dictionaries(
        {},
        optional={
            "fullUrl": st.one_of(st.uuids().map(lambda u: f"urn:uuid:{u}"), text()),
            "resource": resources(known),
            "request": st.one_of(
                st.fixed_dictionaries(
                    {
                        "method": st.sampled_from(
                            ["POST", "PUT", "GET", "DELETE", "PATCH", "HEAD", "get", "BREW"]
                        ),
                        "url": st.one_of(
                            st.sampled_from(TYPES),
                            st.sampled_from(known or ["Patient/x"]),
                            text(30),
                        ),
                    },
                    optional={"ifNoneExist": text(20), "ifMatch": text(8)},
                ),
                any_json(3),
            ),
        },
    )
    return st.builds(
        lambda kind, entries: {"resourceType": "Bundle", "type": kind, "entry": entries},
        st.sampled_from(["transaction", "batch", "collection", "searchset", "bogus"]),
        st.lists(entry, max_size=5),
    )


def _dumps(value: Any) -> bytes:
    """json, not orjson: generated integers may exceed 64 bits, which clients can send."""
    return json.dumps(value, ensure_ascii=False).encode()


def fhir_requests(known: list[str], tokens: dict[str, str]) -> st.SearchStrategy[FuzzRequest]:
    """One request to /fhir of any kind FHIR R4 defines, mostly with a valid token."""
    rtype = st.one_of(st.sampled_from(TYPES), st.sampled_from(BOGUS_TYPES))
    known_ref = st.sampled_from(known or ["Patient/none"])

    def path_for(kind: str, t: str, ref: str, raw_id: str) -> str:
        rid = quote(raw_id, safe="")
        t = quote(t, safe="")
        own = ref if ref.startswith(t + "/") else f"{t}/{rid}"
        return {
            "type": t,
            "instance": own,
            "history": f"{own}/_history",
            "vread": f"{own}/_history/{quote(rid[:5] or '1', safe='')}",
            "type-history": f"{t}/_history",
            "everything": f"{ref.split('/', maxsplit=1)[0]}/{ref.rsplit('/', maxsplit=1)[-1]}/$everything",
            "search": f"{t}/_search",
            "system": "",
            "metadata": "metadata",
            "operation": f"{t}/$" + quote(rid[:10], safe=""),
            "raw": quote(raw_id, safe="/$"),
        }[kind]

    kind = st.sampled_from(
        [
            "type",
            "instance",
            "history",
            "vread",
            "type-history",
            "everything",
            "search",
            "system",
            "metadata",
            "operation",
            "raw",
        ]
    )
    body = st.one_of(
        st.none(),
        resources(known).map(_dumps),
        bundles(known).map(_dumps),
        st.binary(max_size=200),
        st.sampled_from(
            [
                b"{",
                b"[]",
                b"null",
                b'{"resourceType":',
                b"\xff\xfe",
                b'{"a":' * 60 + b"1" + b"}" * 60,
            ]
        ),
    )
    method = st.sampled_from(
        ["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    )
    return st.builds(
        lambda m, k, t, ref, rid, q, h, b: FuzzRequest(m, path_for(k, t, ref, rid), q, h, b),
        method, kind, rtype, known_ref, ids(),
        rtype.flatmap(search_pairs), headers(tokens), body,
    )  # fmt: skip


@dataclass
class FuzzReport:
    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, status: int, what: str) -> None:
        self.requests += 1
        self.by_status[status] += 1
        if status >= 500 and len(self.failures) < 50:
            self.failures.append(f"{status}: {what}")

    def summary(self) -> str:
        fives = sum(n for s, n in self.by_status.items() if s >= 500)
        top = ", ".join(f"{s}: {n}" for s, n in sorted(self.by_status.items()))
        return f"{self.requests} requests in {self.seconds:.0f} s, {fives} 5xx ({top})"


Send = Callable[[str, str, dict[str, str], bytes | None], int]


def fuzz_fhir(
    send: Send, known: list[str], tokens: dict[str, str], examples: int, seed: int = 0
) -> FuzzReport:
    """Draw ``examples`` requests and send each with its variants (2-3 requests a draw);
    every status goes in the report."""
    report = FuzzReport()
    began = time.monotonic()

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fhir_requests(known, tokens))
    def run(drawn: FuzzRequest) -> None:
        for req in drawn.variants(tokens["system"]):
            status = send(req.method, req.url(), req.headers, req.body)
            report.record(
                status, f"{req.method} {req.url()[:300]} {req.headers} {(req.body or b'')[:300]!r}"
            )

    with warnings.catch_warnings():
        # hypothesis describes big generated values as it goes; the report says enough
        warnings.simplefilter("ignore", HypothesisWarning)
        run()
    report.seconds = time.monotonic() - began
    return report


# -- schemathesis on the non-FHIR JSON endpoints ------------------------------------------

_FORM = "application/x-www-form-urlencoded"


def _form_op(summary: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {
                    _FORM: {"schema": {"type": "object", "properties": props, "required": required}}
                },
            },
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "400": {
                    "description": "OAuth error",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": {
                    "description": "client authentication failed",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            },
        }
    }


def _get_json(summary: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }


def nonfhir_openapi(app_schema: dict[str, Any]) -> dict[str, Any]:
    """The application's own OpenAPI description plus the OAuth2/SMART JSON endpoints."""
    s = {"type": "string"}
    paths = dict(app_schema.get("paths", {}))
    paths["/oauth/token"] = _form_op(
        "OAuth2 token endpoint (RFC 6749)",
        {
            "grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials", "password"]},
            "code": s, "redirect_uri": s, "client_id": s, "client_secret": s,
            "code_verifier": s, "refresh_token": s, "scope": s,
        },
        ["grant_type"],
    )  # fmt: skip
    paths["/oauth/revoke"] = _form_op(
        "RFC 7009 revocation",
        {
            "token": s,
            "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
            "client_id": s,
            "client_secret": s,
        },
        ["token"],
    )
    paths["/oauth/introspect"] = _form_op(
        "RFC 7662 introspection", {"token": s, "client_id": s, "client_secret": s}, ["token"]
    )
    paths["/.well-known/jwks.json"] = _get_json("the token signing key")
    paths["/.well-known/smart-configuration"] = _get_json("SMART discovery")
    paths["/fhir/.well-known/smart-configuration"] = _get_json("SMART discovery under /fhir")
    return {**app_schema, "openapi": "3.0.3", "paths": paths}


SendKw = Callable[[dict[str, Any]], int]


def _flat_form(data: Any) -> Any:
    """schemathesis builds form bodies for ``requests``; nested values become strings."""
    if not isinstance(data, dict):
        return data
    out: list[tuple[str, str]] = []
    for k, v in data.items():
        for item in v if isinstance(v, list) else [v]:
            out.append((str(k), item if isinstance(item, str) else json.dumps(item)))
    return urlencode(out)


def fuzz_openapi(schema: dict[str, Any], send: SendKw, examples: int, seed: int = 0) -> FuzzReport:
    """schemathesis over every operation, valid and invalid inputs: ``examples`` each."""
    import schemathesis
    from schemathesis import GenerationMode

    report = FuzzReport()
    began = time.monotonic()
    loaded = schemathesis.openapi.from_dict(schema)
    for result in loaded.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_seed(seed)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(op.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                kw = case.as_transport_kwargs(base_url="")
                if "data" in kw:
                    kw["content"] = _flat_form(kw.pop("data"))
                kw.pop("cookies", None)
                kw["headers"] = {
                    k: str(v).encode("latin-1")
                    for k, v in kw.get("headers", {}).items()
                    if _latin1(str(v))
                }
                status = send(kw)
                report.record(status, f"{kw['method']} {kw['url']} {str(kw)[:400]}")

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", HypothesisWarning)
                    run()
            except Exception as exc:  # an operation schemathesis cannot generate for
                if "Unsatisfiable" not in type(exc).__name__:
                    raise
    report.seconds = time.monotonic() - began
    return report
