"""Writing to the card: one builder per entry type, one transaction per form, signed.

``submit(repo, keys, kind, patient_id, form, submission_key)`` validates the form
(``FormError`` lists every problem, nothing is written), writes the FHIR resources,
and signs them as the practitioner in the same transaction.  ``KINDS`` names the
entry types; ``organizations`` and ``open_orders`` feed the forms' choices.
"""

from __future__ import annotations

from medcard.entries.builders import (
    ALLERGY_CATEGORIES,
    CLINICAL_STATUSES,
    CRITICALITY,
    EXAM_KINDS,
    KINDS,
    MODALITIES,
    PRIORITIES,
    REFERRAL_KINDS,
    VISIT_KINDS,
    EntryContext,
    next_due,
    open_orders,
    organizations,
)
from medcard.entries.problems import FormError, Problem
from medcard.entries.service import SUBMISSION_SYSTEM, Submitted, author_context, submit

__all__ = [
    "ALLERGY_CATEGORIES",
    "CLINICAL_STATUSES",
    "CRITICALITY",
    "EXAM_KINDS",
    "KINDS",
    "MODALITIES",
    "PRIORITIES",
    "REFERRAL_KINDS",
    "SUBMISSION_SYSTEM",
    "VISIT_KINDS",
    "EntryContext",
    "FormError",
    "Problem",
    "Submitted",
    "author_context",
    "next_due",
    "open_orders",
    "organizations",
    "submit",
]
