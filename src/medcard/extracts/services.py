"""Requesting extracts, listing them and handing out their files; no web framework here.

Every call takes the caller's ``Repository`` (for pages: ``page_repository``), so the
gate decides whose card may be extracted and downloaded, and every access is audited.
Another patient's card or extract looks exactly like a missing one (:class:`NotFound`).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine

from medcard.extracts import verification
from medcard.extracts.model import (
    BUILDING,
    CATEGORY_CODE,
    CATEGORY_SYSTEM,
    CODE_SYSTEM,
    EXT_SECTIONS,
    EXT_SHA256,
    EXT_STATE,
    LOINC,
    READY,
    SUMMARY_LOINC,
    ExtractInfo,
    attachment_binary,
    extension,
    info,
    is_extract,
)
from medcard.extracts.render import Period
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.records.sections import SECTION_BY_KEY

log = logging.getLogger("medcard.extracts")

MAX_LISTED: Final = 200
EARLIEST: Final = dt.date(1900, 1, 1)


class RequestError(ValueError):
    """The form is wrong; ``key`` names the text the page shows."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class NotFound(Exception):  # noqa: N818 - "not found" is what the page says
    """No such extract for this card, or not the caller's to see."""


class NotReady(Exception):  # noqa: N818
    """The extract is still being built or failed: there is no file to download."""


@dataclass(frozen=True)
class ExtractRequest:
    sections: tuple[str, ...]
    period: Period
    lang: str = "ru"


def _date(raw: str) -> dt.date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise RequestError("extracts_error_date") from None
    if day < EARLIEST:
        raise RequestError("extracts_error_date")
    return day


def parse_request(
    sections: Iterable[str], start: str, end: str, lang: str, today: dt.date
) -> ExtractRequest:
    """Check the form: known sections (at least one), real dates in order, none ahead."""
    chosen = [s for s in dict.fromkeys(sections) if s]
    if not chosen:
        raise RequestError("extracts_error_no_sections")
    if any(s not in SECTION_BY_KEY for s in chosen):
        raise RequestError("extracts_error_sections")
    first, last = _date(start), _date(end)
    if first is not None and last is not None and first > last:
        raise RequestError("extracts_error_order")
    if first is not None and first > today:
        raise RequestError("extracts_error_future")
    ordered = tuple(k for k in SECTION_BY_KEY if k in chosen)
    return ExtractRequest(ordered, Period(first, last), "en" if lang == "en" else "ru")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_document(
    patient_id: str, req: ExtractRequest, code: str, now: dt.datetime
) -> dict[str, Any]:
    """The DocumentReference of an extract being built (R4 requires a content element:
    a placeholder attachment until the files exist)."""
    period = {}
    if req.period.start:
        period["start"] = req.period.start.isoformat()
    if req.period.end:
        period["end"] = req.period.end.isoformat()
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "language": req.lang,
        "extension": [
            {"url": EXT_STATE, "valueCode": BUILDING},
            *({"url": EXT_SECTIONS, "valueCode": s} for s in req.sections),
        ],
        "identifier": [{"system": CODE_SYSTEM, "value": code}],
        "status": "current",
        "docStatus": "preliminary",
        "type": {
            "coding": [
                {"system": LOINC, "code": SUMMARY_LOINC, "display": "Patient summary Document"}
            ],
            "text": "Выписка из медицинской карты",
        },
        "category": [
            {
                "coding": [
                    {
                        "system": CATEGORY_SYSTEM,
                        "code": CATEGORY_CODE,
                        "display": "Выписка из медицинской карты",
                    }
                ]
            }
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": now.isoformat(),
        "description": "Выписка из медицинской карты",
        "content": [{"attachment": {"contentType": "application/pdf", "title": "extract.pdf"}}],
    }
    if period:
        doc["context"] = {"period": period}
    return doc


def request_extract(
    repo: Repository,
    patient_id: str,
    req: ExtractRequest,
    *,
    base_url: str,
    now: dt.datetime | None = None,
) -> str:
    """Record the request (one transaction) and queue the job; returns the extract's id.

    The job is queued after the commit, so it always finds what it works on; if the
    queue itself refuses, the extract is marked failed at once rather than left building.
    """
    from medcard.extracts import jobs  # the job module imports this one's helpers

    try:
        with repo.unit_of_work():
            repo.read("Patient", patient_id)  # someone else's card: 404, nothing written
            doc = new_document(patient_id, req, verification.new_code(), now or _now())
            stored = repo.create(doc).stored
    except FhirError as exc:
        if exc.status in (403, 404, 410):
            raise NotFound from None
        raise
    try:
        jobs.build_extract(doc_id=stored.id, patient_id=patient_id, base_url=base_url)
    except Exception as exc:
        log.exception("extract %s could not be queued", stored.id)
        jobs.mark_failed(repo.engine, stored.id, patient_id, f"queue unavailable: {exc}"[:300])
    return stored.id


def list_extracts(
    repo: Repository, patient_id: str, now: dt.datetime | None = None
) -> list[ExtractInfo]:
    """The card's extracts, newest first (the card itself must be visible to the caller)."""
    try:
        repo.read("Patient", patient_id)
        req = parse(
            "DocumentReference",
            [
                ("patient", patient_id),
                ("category", f"{CATEGORY_SYSTEM}|{CATEGORY_CODE}"),
                ("_count", str(MAX_LISTED)),
            ],
            max_count=MAX_LISTED,
        )
        docs = [m.json() for m in repo.search(req).matches]
    except FhirError as exc:
        if exc.status in (403, 404, 410):
            raise NotFound from None
        raise
    moment = now or _now()
    items = [info(d, moment) for d in docs if is_extract(d)]
    items.sort(key=lambda i: (i.created, i.id), reverse=True)
    return items


@dataclass(frozen=True)
class File:
    data: bytes
    content_type: str
    filename: str


KINDS: Final = {"pdf": (0, "application/pdf"), "json": (1, "application/fhir+json")}


def extract_file(repo: Repository, patient_id: str, extract_id: str, kind: str) -> File:
    """The PDF or the Bundle of a ready extract of this card, checked against its hash."""
    if kind not in KINDS:
        raise NotFound
    index, content_type = KINDS[kind]
    try:
        doc = repo.read("DocumentReference", extract_id).json()
    except FhirError as exc:
        if exc.status in (403, 404, 410):
            raise NotFound from None
        raise
    if (
        not is_extract(doc)
        or (doc.get("subject") or {}).get("reference") != f"Patient/{patient_id}"
    ):
        raise NotFound
    item = info(doc, _now())
    binary_id = attachment_binary(doc, index)
    if item.state != READY or not binary_id:
        raise NotReady
    try:
        binary = repo.read("Binary", binary_id).json()
    except FhirError as exc:
        if exc.status in (403, 404, 410):
            raise NotFound from None
        raise
    data = base64.b64decode(binary.get("data") or "")
    attachment = doc["content"][index].get("attachment") or {}
    expected = [str(e.get("valueString", "")) for e in extension(attachment, EXT_SHA256)]
    if expected and verification.sha256_hex(data) != expected[0]:
        log.error("extract %s: stored %s does not match its hash", extract_id, kind)
        raise NotReady
    name = f"extract-{verification.pretty(item.code)}.{kind}"
    return File(data, content_type, name)


def check(engine: Engine, key: Any, code: str, data: bytes | None = None) -> verification.Check:
    """The public verification (see :mod:`medcard.extracts.verification`)."""
    return verification.check(engine, key, code, data)
