"""Digital signatures of medical documents: algorithm registry, per-author keys, Provenance.

``sign`` inside a unit of work makes the signature; ``statuses`` tells, for entries
shown on a page, whether each is signed and whether the signature still verifies;
``correct`` writes a new signed version of a signed document.
"""

from __future__ import annotations

from medcard.signing.documents import (
    UNSIGNED,
    Status,
    Verification,
    as_shown,
    correct,
    sign,
    signatures_of,
    statuses,
    verify,
    versioned,
)
from medcard.signing.keys import KeyStore

__all__ = [
    "UNSIGNED",
    "KeyStore",
    "Status",
    "Verification",
    "as_shown",
    "correct",
    "sign",
    "signatures_of",
    "statuses",
    "verify",
    "versioned",
]
