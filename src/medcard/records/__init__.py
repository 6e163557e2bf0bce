"""The medical card as people read it: a patient's FHIR resources turned into sections,
entries, lab trends, the vaccination calendar and a timeline.  No web code here; the
patient portal (``medcard.web.portal``) and the clinician's workspace render the same
objects.

Public API::

    from medcard.records import load_card, SECTIONS, label

    card = load_card(repo, patient_id)         # one gated, audited $everything
    card.overview()                            # Overview: polyclinic, physician, active
                                               #   diagnoses, allergies, recent, pending
    card.section("labs")                       # [Entry], newest first (KeyError: unknown)
    card.entry("Observation", oid)             # Entry | None (None: not in this card)
    card.of_encounter("Encounter/x")           # what was recorded during a visit
    card.listed(), card.organizations(), card.counts()

    lab_series(card) / series_for(card, key)   # analyte series (points oldest first)
    trend_svg(series)                          # str: SVG chart, every text escaped
    calendar(card)                             # [CalendarDose]: done/due/overdue/planned
    parse_filters(from_, to, org, type_, q)    # (Filters, FilterErrors)
    timeline(card, filters)                    # [Entry] matching every filter

An :class:`Entry` has ``resource_type``, ``id``, ``section``, ``date`` (ISO), ``title``,
``status``, ``organization``/``organization_ref``, ``practitioner``/``practitioner_ref``,
``summary``, ``details`` ((label key, value) pairs: ``label(key, lang)``,
``value_text(value, lang)``), ``flag`` (H/L/A...; ``out_of_range``), ``patient_entered``,
``children`` (a report's results, a check-up's measurements), ``attachments`` and the
raw ``resource``.  Entries with status ``entered-in-error`` are never built.
"""

from __future__ import annotations

from medcard.records.card import (
    Attachment,
    Card,
    Entry,
    Overview,
    build_card,
    document_text,
    load_card,
    ru_date,
)
from medcard.records.checkups import CheckupDue, checkup_due
from medcard.records.labels import label, value_text
from medcard.records.labs import Point, Series, analyte_key, lab_series, series_for, trend_svg
from medcard.records.sections import SECTION_BY_KEY, SECTIONS, Section, section_of
from medcard.records.timeline import FilterErrors, Filters, parse_filters, timeline
from medcard.records.vaccinations import CalendarDose, attention, calendar

__all__ = [
    "SECTIONS",
    "SECTION_BY_KEY",
    "Attachment",
    "CalendarDose",
    "Card",
    "CheckupDue",
    "Entry",
    "FilterErrors",
    "Filters",
    "Overview",
    "Point",
    "Section",
    "Series",
    "analyte_key",
    "attention",
    "build_card",
    "calendar",
    "checkup_due",
    "document_text",
    "lab_series",
    "label",
    "load_card",
    "parse_filters",
    "ru_date",
    "section_of",
    "series_for",
    "timeline",
    "trend_svg",
    "value_text",
]
