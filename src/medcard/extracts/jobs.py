"""The background job that builds an extract: read the card, render the PDF and the FHIR
document, store both and mark the extract ready, or failed with a reason.

The job acts for the patient (their compartment only, same gate and audit as the
portal), reads everything before it writes, and writes the two ``Binary`` resources
and the final DocumentReference in one transaction, so a retry after any failure
starts clean, and a finished extract is never built twice.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from typing import Any, Final

from joserfc.jwk import ECKey
from sqlalchemy import Engine

from medcard import jobs
from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.auth.tokens import load_or_create_key
from medcard.extracts import verification
from medcard.extracts.bundle import bundle_bytes, document_bundle
from medcard.extracts.model import (
    BUILDING,
    EXT_FAILURE,
    EXT_SHA256,
    EXT_STATE,
    EXT_VERIFICATION,
    FAILED,
    READY,
    code_of,
    info,
)
from medcard.extracts.render import Extract, Period, render_pdf, select
from medcard.fhir.store.repository import Repository
from medcard.records import load_card
from medcard.regions.zone import times_of

log = logging.getLogger("medcard.extracts")

SYSTEM_NAME: Final = {"ru": "Медицинская карта (medcard)", "en": "Medical card (medcard)"}


def acting_for(patient_id: str) -> AccessContext:
    """The job's access: this one card, as its patient sees it, and nothing else."""
    return AccessContext(
        actor="system:extracts",
        scopes=Scopes.parse("patient/*.cruds"),
        client_id="job:extracts",
        patient_ids=frozenset({patient_id}),
        purpose="extract",
        role=Role.PATIENT,
    )


def issuing_system() -> AccessContext:
    """Writes of the finished extract: made by the issuing system, not by the patient, so
    they carry no "entered by the patient" tag and the patient cannot alter them."""
    return AccessContext.system("system:extracts", purpose="extract")


def _attachment(
    content_type: str, title: str, binary_id: str, data: bytes, created: str
) -> dict[str, Any]:
    return {
        "extension": [{"url": EXT_SHA256, "valueString": verification.sha256_hex(data)}],
        "contentType": content_type,
        "url": f"Binary/{binary_id}",
        "size": len(data),
        # R4 Attachment.hash is SHA-1 (base64); the verification relies on the SHA-256.
        "hash": base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode(),
        "title": title,
        "creation": created,
    }


def _binary(patient_id: str, content_type: str, data: bytes) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "contentType": content_type,
        "securityContext": {"reference": f"Patient/{patient_id}"},
        "data": base64.b64encode(data).decode(),
    }


def _without(doc: dict[str, Any], *urls: str) -> list[dict[str, Any]]:
    return [e for e in doc.get("extension") or [] if e.get("url") not in urls]


def build(
    engine: Engine,
    key: ECKey,
    *,
    doc_id: str,
    patient_id: str,
    base_url: str,
    now: dt.datetime | None = None,
) -> None:
    """Build one extract; raises on failure (the queue retries, then :func:`mark_failed`)."""
    issued = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    repo = Repository(engine, acting_for(patient_id))
    try:
        doc = repo.read("DocumentReference", doc_id).json()
        if doc.get("docStatus") == "final":
            return  # a retry after success: nothing to do
        if (doc.get("subject") or {}).get("reference") != f"Patient/{patient_id}":
            raise ValueError("the extract belongs to another card")
        item = info(doc)
        code = code_of(doc)
        if not verification.well_formed(code):
            raise ValueError("the extract has no valid verification code")
        card = load_card(repo, patient_id, today=issued.date())
        period = Period(
            dt.date.fromisoformat(item.start[:10]) if item.start else None,
            dt.date.fromisoformat(item.end[:10]) if item.end else None,
        )
        lang = item.lang if item.lang in SYSTEM_NAME else "ru"
        extract = Extract(
            code=code,
            issued=issued,
            lang=lang,
            base_url=base_url.rstrip("/"),
            system_name=SYSTEM_NAME[lang],
            patient=card.patient,
            period=period,
            sections=select(card, item.sections, period),
            times=times_of(engine, lang, patient_id=patient_id),
        )
        pdf = render_pdf(extract)
        bundle = bundle_bytes(document_bundle(extract))
        record = verification.Record(
            code=code,
            pdf_sha256=verification.sha256_hex(pdf),
            bundle_sha256=verification.sha256_hex(bundle),
            issued=issued.isoformat(),
            initials=verification.initials_of(card.patient),
            sections=item.sections,
            start=item.start,
            end=item.end,
            system=SYSTEM_NAME[lang],
        )
        token = verification.sign(record, key)
        created = issued.isoformat()
        writer = Repository(engine, issuing_system())
        try:
            _store(writer, doc_id, patient_id, code, token, pdf, bundle, created)
        finally:
            writer.close()
        log.info(
            "extract %s ready: %d entries, %d bytes of PDF", doc_id, extract.entry_count, len(pdf)
        )
    finally:
        repo.close()


def _store(
    repo: Repository,
    doc_id: str,
    patient_id: str,
    code: str,
    token: str,
    pdf: bytes,
    bundle: bytes,
    created: str,
) -> None:
    """The two Binaries and the final DocumentReference, in one transaction."""
    with repo.unit_of_work():
        pdf_id = repo.create(_binary(patient_id, "application/pdf", pdf)).stored.id
        json_id = repo.create(_binary(patient_id, "application/fhir+json", bundle)).stored.id
        current = repo.read("DocumentReference", doc_id).json()
        if current.get("docStatus") == "final":
            raise RuntimeError("built twice at once")  # rolls back this copy's Binaries
        name = f"extract-{verification.pretty(code)}"
        current["extension"] = [
            *_without(current, EXT_STATE, EXT_FAILURE, EXT_VERIFICATION),
            {"url": EXT_STATE, "valueCode": READY},
            {"url": EXT_VERIFICATION, "valueString": token},
        ]
        current["docStatus"] = "final"
        current["content"] = [
            {"attachment": _attachment("application/pdf", f"{name}.pdf", pdf_id, pdf, created)},
            {
                "attachment": _attachment(
                    "application/fhir+json", f"{name}.json", json_id, bundle, created
                ),
                "format": {
                    "system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
                    "code": "urn:hl7-org:sdwg:fhir-document",
                    "display": "FHIR document",
                },
            },
        ]
        repo.update("DocumentReference", doc_id, current)


def mark_failed(engine: Engine, doc_id: str, patient_id: str, reason: str) -> None:
    """Show the extract as failed, with the reason; a finished one is left alone."""
    repo = Repository(engine, issuing_system())
    try:
        with repo.unit_of_work():
            doc = repo.read("DocumentReference", doc_id).json()
            if doc.get("docStatus") == "final":
                return
            doc["extension"] = [
                *_without(doc, EXT_STATE, EXT_FAILURE),
                {"url": EXT_STATE, "valueCode": FAILED},
                {"url": EXT_FAILURE, "valueString": reason[:300] or "unknown error"},
            ]
            repo.update("DocumentReference", doc_id, doc)
    finally:
        repo.close()


def _record_failure(kwargs: dict[str, Any], reason: str) -> None:
    mark_failed(jobs.runtime().engine, str(kwargs["doc_id"]), str(kwargs["patient_id"]), reason)


@jobs.job(retries=2, retry_delay=3, on_failure=_record_failure)
def build_extract(*, doc_id: str, patient_id: str, base_url: str) -> None:
    rt = jobs.runtime()
    build(
        rt.engine,
        load_or_create_key(rt.settings.signing_key_path),
        doc_id=doc_id,
        patient_id=patient_id,
        base_url=base_url,
    )


__all__ = ["BUILDING", "acting_for", "build", "build_extract", "mark_failed"]
