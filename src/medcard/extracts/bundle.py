"""The extract as a FHIR document: a ``Bundle`` of type ``document``, the ``Composition``
first (R4 bundle.html#document: bdl-11), then the patient and every entry it lists.

Entries keep the server's own URLs as ``fullUrl``, so references inside them
("Patient/…", "Encounter/…") resolve to the same resources on this server; the
Composition itself exists only in the document (``urn:uuid``).
"""

from __future__ import annotations

import uuid
from html import escape
from typing import Any

import orjson

from medcard.extracts.model import CODE_SYSTEM, LOINC, SUMMARY_LOINC
from medcard.extracts.render import TEXTS, Extract, text_lang
from medcard.records import Entry
from medcard.records.sections import MEDCARD

SECTION_SYSTEM = f"{MEDCARD}/card-section"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
XHTML = "http://www.w3.org/1999/xhtml"


def _div(text: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{escape(text)}</div>'}


def document_bundle(extract: Extract) -> dict[str, Any]:
    lang = text_lang(extract.lang)
    t = TEXTS[lang]
    fhir = f"{extract.base_url}/fhir"
    patient = dict(extract.patient)
    patient_url = f"{fhir}/Patient/{patient.get('id', '')}"
    entries: list[dict[str, Any]] = [{"fullUrl": patient_url, "resource": patient}]
    seen = {patient_url}

    def add(entry: Entry) -> str:
        url = f"{fhir}/{entry.resource_type}/{entry.id}"
        if url not in seen and entry.resource:
            seen.add(url)
            entries.append({"fullUrl": url, "resource": dict(entry.resource)})
        return url

    sections = []
    for section, listed in extract.sections:
        refs = []
        for entry in listed:
            refs.append({"reference": add(entry)})
            for child in entry.children:
                add(child)
        item: dict[str, Any] = {
            "title": section.title(lang),
            "code": {"coding": [{"system": SECTION_SYSTEM, "code": section.key}]},
        }
        if refs:
            item["entry"] = refs
            item["text"] = _div(f"{section.title(lang)}: {t['entries'].format(n=len(refs))}")
        else:
            item["text"] = _div(t["none"])
            item["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": "nilknown"}]}
        sections.append(item)

    issued = extract.issued.isoformat(timespec="seconds")
    period: dict[str, str] = {}
    if extract.period.start:
        period["start"] = extract.period.start.isoformat()
    if extract.period.end:
        period["end"] = extract.period.end.isoformat()
    composition_url = f"urn:uuid:{uuid.uuid4()}"
    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "language": lang,
        "identifier": {"system": CODE_SYSTEM, "value": extract.code},
        "status": "final",
        "type": {
            "coding": [
                {"system": LOINC, "code": SUMMARY_LOINC, "display": "Patient summary Document"}
            ],
            "text": t["title"],
        },
        "subject": {"reference": patient_url},
        "date": issued,
        "author": [{"display": extract.system_name}],
        "title": t["title"],
        "confidentiality": "R",
        "section": sections,
    }
    if period:
        composition["event"] = [{"period": period}]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "language": lang,
        "identifier": {"system": CODE_SYSTEM, "value": extract.code},
        "type": "document",
        "timestamp": issued,
        "entry": [{"fullUrl": composition_url, "resource": composition}, *entries],
    }


def bundle_bytes(bundle: dict[str, Any]) -> bytes:
    """The exact bytes that are stored, hashed and downloaded."""
    return orjson.dumps(bundle, option=orjson.OPT_INDENT_2)
