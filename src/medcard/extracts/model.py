"""How an extract lives in FHIR: a ``DocumentReference`` in the patient's compartment.

* ``identifier`` (system :data:`CODE_SYSTEM`) is the verification code printed on it;
* ``category`` :data:`CATEGORY_CODE` marks it as an extract, ``type`` is LOINC 60591-5
  "Patient summary Document";
* ``docStatus`` is ``preliminary`` while the job builds it, ``final`` when both files are
  attached (``content[0]`` the PDF, ``content[1]`` the FHIR document Bundle, each a
  ``Binary`` in the patient's compartment, with size, SHA-1 ``hash`` as R4 defines it
  and a SHA-256 extension, which the verification uses);
* extensions hold what the patient chose (sections, in order), the state
  (building / ready / failed) with the reason of a failure, and the signed
  verification record (a compact JWS, see :mod:`medcard.extracts.verification`);
* ``context.period`` is the period chosen (open ends allowed), ``language`` the language
  the PDF is written in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from medcard.records.sections import EXTRACT_CATEGORY, SECTION_BY_KEY
from medcard.records.sections import is_extract as records_is_extract

BASE: Final = "https://medcard.example/fhir"
CODE_SYSTEM: Final = f"{BASE}/sid/extract-code"
CATEGORY_SYSTEM, CATEGORY_CODE = EXTRACT_CATEGORY
EXT_SECTIONS: Final = f"{BASE}/StructureDefinition/extract-sections"
EXT_STATE: Final = f"{BASE}/StructureDefinition/extract-state"
EXT_FAILURE: Final = f"{BASE}/StructureDefinition/extract-failure"
EXT_VERIFICATION: Final = f"{BASE}/StructureDefinition/extract-verification"
EXT_SHA256: Final = f"{BASE}/StructureDefinition/attachment-sha256"
LOINC: Final = "http://loinc.org"
SUMMARY_LOINC: Final = "60591-5"  # Patient summary Document

BUILDING: Final = "building"
READY: Final = "ready"
FAILED: Final = "failed"
# A job that neither finished nor failed within this time died with its worker (a
# killed process): the extract is shown as failed, never as building forever.
STALE_AFTER: Final = dt.timedelta(minutes=15)


def extension(resource: Mapping[str, Any], url: str) -> list[Mapping[str, Any]]:
    return [e for e in resource.get("extension") or [] if e.get("url") == url]


@dataclass(frozen=True)
class ExtractInfo:
    """What the extracts list shows about one DocumentReference."""

    id: str
    patient_id: str
    code: str
    state: str
    reason: str
    created: str  # ISO instant
    sections: tuple[str, ...]
    start: str
    end: str
    pdf_size: int
    lang: str

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def building(self) -> bool:
        return self.state == BUILDING


def code_of(doc: Mapping[str, Any]) -> str:
    for ident in doc.get("identifier") or []:
        if ident.get("system") == CODE_SYSTEM and isinstance(ident.get("value"), str):
            return str(ident["value"])
    return ""


def is_extract(doc: Mapping[str, Any]) -> bool:
    return records_is_extract(dict(doc))


def state_of(doc: Mapping[str, Any], now: dt.datetime | None = None) -> tuple[str, str]:
    """(state, reason); a build running past :data:`STALE_AFTER` counts as failed."""
    states = extension(doc, EXT_STATE)
    state = str(states[0].get("valueCode", "")) if states else ""
    if not state:
        state = READY if doc.get("docStatus") == "final" else BUILDING
    failures = extension(doc, EXT_FAILURE)
    reason = str(failures[0].get("valueString", "")) if failures else ""
    if state == BUILDING and now is not None:
        try:
            created = dt.datetime.fromisoformat(str(doc.get("date", "")))
        except ValueError:
            created = None
        if created is not None and now - created > STALE_AFTER:
            return FAILED, "timeout"
    return state, reason


def info(doc: Mapping[str, Any], now: dt.datetime | None = None) -> ExtractInfo:
    state, reason = state_of(doc, now)
    sections = tuple(
        str(e.get("valueCode"))
        for e in extension(doc, EXT_SECTIONS)
        if e.get("valueCode") in SECTION_BY_KEY
    )
    period = (doc.get("context") or {}).get("period") or {}
    content = doc.get("content") or []
    pdf = (content[0].get("attachment") or {}) if content else {}
    subject = str((doc.get("subject") or {}).get("reference", ""))
    return ExtractInfo(
        id=str(doc.get("id", "")),
        patient_id=subject.split("/", 1)[1] if subject.startswith("Patient/") else "",
        code=code_of(doc),
        state=state,
        reason=reason,
        created=str(doc.get("date", "")),
        sections=sections,
        start=str(period.get("start", "")),
        end=str(period.get("end", "")),
        pdf_size=int(pdf.get("size") or 0) if state == READY else 0,
        lang=str(doc.get("language") or "ru"),
    )


def attachment_binary(doc: Mapping[str, Any], index: int) -> str:
    """The Binary id holding content[index] ("" when the extract has none)."""
    content = doc.get("content") or []
    if index >= len(content):
        return ""
    url = str((content[index].get("attachment") or {}).get("url") or "")
    return url.split("/", 1)[1] if url.startswith("Binary/") and url.count("/") == 1 else ""
