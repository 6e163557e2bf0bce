"""Attaching a person to a polyclinic: find or create the card, detach, move, history.

An attachment is ``Patient.managingOrganization`` (+ ``generalPractitioner``) for the
current state and one ``EpisodeOfCare`` of type ``attachment`` per period at one
polyclinic (docs/adr/0004-attachment-and-signatures.md).
"""

from __future__ import annotations

from medcard.attachment.services import (
    EPISODE_KIND_SYSTEM,
    Attachment,
    AttachResult,
    PersonData,
    attach,
    current_attachment,
    detach,
    find_matches,
    history,
    parse_person,
)

__all__ = [
    "EPISODE_KIND_SYSTEM",
    "AttachResult",
    "Attachment",
    "PersonData",
    "attach",
    "current_attachment",
    "detach",
    "find_matches",
    "history",
    "parse_person",
]
