"""Verification codes and records: anyone holding an extract can check it is genuine.

The code is short enough to type from paper: nine random characters from an alphabet
without look-alikes (no 0/O, 1/I/L, 5/S) plus a check character (Luhn mod N), so a
mistyped character is caught before any lookup, and guessing a valid code is hopeless
(30^9 ≈ 2·10^13).

The verification record binds the code to the SHA-256 of the PDF and of the FHIR
Bundle, the issue date, the patient's initials, the sections and the period.  It is
signed by the server's key (ES256, the key that signs access tokens, published at
``/.well-known/jwks.json``) as a compact JWS kept on the extract's DocumentReference,
so an edit of the database (a swapped hash, another date) breaks the signature and
the page says the record itself was altered.

The public page reveals only that minimum: no diagnoses, no identifiers.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.extracts.model import (
    CODE_SYSTEM,
    EXT_VERIFICATION,
    READY,
    extension,
    is_extract,
    state_of,
)
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository

# 30 characters: no 0/O, 1/I/L, 5/S.  Luhn mod N needs an even N: with an odd one two
# characters double to the same sum and a typo between them would pass.
ALPHABET: Final = "23456789ABCDEFGHJKMNPQRTUVWXYZ"
RANDOM_LENGTH: Final = 9
LENGTH: Final = RANDOM_LENGTH + 1
KEYWORD_PREFIX: Final = "medcard-verify:"
_KEYWORD = re.compile(rb"medcard-verify:([2-9A-Z]{%d})" % LENGTH)
_KEYWORD_UTF16 = re.compile(
    b"".join(b"\x00" + bytes([c]) for c in KEYWORD_PREFIX.encode()) + rb"((?:\x00[2-9A-Z]){10})"
)
_KEYWORD_HEX = re.compile(rb"<FEFF([0-9A-Fa-f]{4,2000})>")


def _check_char(body: str) -> str:
    """Luhn mod N (N = len(ALPHABET)): catches every single wrong character and most
    swaps of neighbouring characters."""
    n = len(ALPHABET)
    factor, total = 2, 0
    for ch in reversed(body):
        addend = factor * ALPHABET.index(ch)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_code() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + _check_char(body)


def normalise(text: str) -> str:
    """Upper case without spaces and dashes: ``abcd-efgh-jk`` → ``ABCDEFGHJK``."""
    return re.sub(r"[\s\-‐‑–—_.]+", "", text or "").upper()[:64]


def well_formed(code: str) -> bool:
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return False
    return _check_char(code[:-1]) == code[-1]


def pretty(code: str) -> str:
    """How the code is printed and shown: ``ABCDE-FGHJK``."""
    return f"{code[:5]}-{code[5:]}" if len(code) == LENGTH else code


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the signed record ------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    code: str
    pdf_sha256: str
    bundle_sha256: str
    issued: str  # ISO instant
    initials: str  # «И. И. И.»
    sections: tuple[str, ...]
    start: str = ""
    end: str = ""
    system: str = "medcard"

    def payload(self) -> bytes:
        return orjson.dumps(
            {
                "code": self.code,
                "pdf": self.pdf_sha256,
                "bundle": self.bundle_sha256,
                "issued": self.issued,
                "initials": self.initials,
                "sections": list(self.sections),
                "start": self.start,
                "end": self.end,
                "system": self.system,
            },
            option=orjson.OPT_SORT_KEYS,
        )

    @classmethod
    def from_payload(cls, data: bytes) -> Record:
        obj = orjson.loads(data)
        return cls(
            code=str(obj["code"]),
            pdf_sha256=str(obj["pdf"]),
            bundle_sha256=str(obj["bundle"]),
            issued=str(obj["issued"]),
            initials=str(obj["initials"]),
            sections=tuple(str(s) for s in obj.get("sections") or ()),
            start=str(obj.get("start", "")),
            end=str(obj.get("end", "")),
            system=str(obj.get("system", "")),
        )


def sign(record: Record, key: ECKey) -> str:
    header = {"alg": "ES256", "kid": key.kid or "", "typ": "medcard-extract+jws"}
    return jws.serialize_compact(header, record.payload(), key)


def unsign(token: str, key: ECKey) -> Record | None:
    """The record if the signature is the server's and intact; None otherwise."""
    try:
        obj = jws.deserialize_compact(token, key, algorithms=["ES256"])
        return Record.from_payload(obj.payload)
    except (JoseError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


def initials_of(patient: Mapping[str, Any]) -> str:
    """«И. И. И.»: family name, first name, patronymic — only their first letters."""
    names = patient.get("name") or []
    if not names:
        return ""
    n = next((x for x in names if x.get("use") == "official"), names[0])
    parts = [str(n.get("family") or ""), *[str(g) for g in n.get("given") or []]]
    if not any(parts) and n.get("text"):
        parts = str(n["text"]).split()
    return " ".join(f"{p[0].upper()}." for p in parts if p)


# -- checking -----------------------------------------------------------------------------


class Verdict(StrEnum):
    GENUINE = "genuine"  # the record is ours, signed, and (if a file was given) it matches
    ALTERED = "altered"  # the record is genuine but the file is not the one issued
    RECORD_ALTERED = "record_altered"  # the stored record fails its signature
    UNKNOWN = "unknown"  # a well-formed code that no extract carries
    MALFORMED = "malformed"  # not a code: a typo, caught by the check character
    NOT_READY = "not_ready"  # an extract still being built, or one that failed
    NO_CODE = "no_code"  # an uploaded file without a medcard verification code


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    code: str = ""
    record: Record | None = None
    matched: str = ""  # "pdf" or "bundle" when a file matched
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def genuine(self) -> bool:
        return self.verdict == Verdict.GENUINE


def code_in_file(data: bytes) -> str:
    """The verification code an extract carries: PDF keywords (plain or UTF-16), or the
    document Bundle's identifier."""
    for pattern in (_KEYWORD, _KEYWORD_UTF16):
        m = pattern.search(data)
        if m:
            return m.group(1).replace(b"\x00", b"").decode()
    for m in _KEYWORD_HEX.finditer(data):  # a PDF text string written as UTF-16BE hex
        try:
            text = bytes.fromhex(m.group(1).decode()).decode("utf-16-be")
        except ValueError:
            continue
        if KEYWORD_PREFIX in text:
            return normalise(text.split(KEYWORD_PREFIX, 1)[1][:LENGTH])
    if data[:1] in (b"{", b" ", b"\n", b"\r", b"\t"):
        try:
            bundle = orjson.loads(data)
        except orjson.JSONDecodeError:
            return ""
        ident = bundle.get("identifier") if isinstance(bundle, dict) else None
        if isinstance(ident, dict) and ident.get("system") == CODE_SYSTEM:
            return normalise(str(ident.get("value", "")))
    return ""


def _stored_record(engine: Engine, code: str) -> tuple[dict[str, Any] | None, str]:
    """The extract's DocumentReference for a code, read by the verification service (audited)."""
    ctx = AccessContext.system("system:extract-verification", purpose="extract verification")
    repo = Repository(engine, ctx)
    try:
        req = parse("DocumentReference", [("identifier", f"{CODE_SYSTEM}|{code}")])
        matches = [m.json() for m in repo.search(req).matches]
    except FhirError:
        matches = []
    finally:
        repo.close()
    docs = [d for d in matches if is_extract(d)]
    if len(docs) != 1:
        return None, ""
    tokens = extension(docs[0], EXT_VERIFICATION)
    return docs[0], str(tokens[0].get("valueString", "")) if tokens else ""


def check(engine: Engine, key: ECKey, code_text: str, data: bytes | None = None) -> Check:
    """Check a code, and a file if one was uploaded (then the code comes from the file)."""
    if data is not None:
        code = code_in_file(data)
        if not code:
            return Check(Verdict.NO_CODE)
    else:
        code = normalise(code_text)
    if not well_formed(code):
        return Check(Verdict.MALFORMED, code)
    doc, token = _stored_record(engine, code)
    if doc is None:
        return Check(Verdict.UNKNOWN, code)
    state, _reason = state_of(doc)
    if state != READY or doc.get("docStatus") != "final" or not token:
        return Check(Verdict.NOT_READY, code)
    record = unsign(token, key)
    if record is None or record.code != code:
        return Check(Verdict.RECORD_ALTERED, code)
    if data is None:
        return Check(Verdict.GENUINE, code, record)
    digest = sha256_hex(data)
    if digest == record.pdf_sha256:
        return Check(Verdict.GENUINE, code, record, matched="pdf")
    if digest == record.bundle_sha256:
        return Check(Verdict.GENUINE, code, record, matched="bundle")
    return Check(Verdict.ALTERED, code, record)
