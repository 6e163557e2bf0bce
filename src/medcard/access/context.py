"""Who is asking, on whose behalf, and with which SMART scopes.

Every store call takes an AccessContext; there is no query path without one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from medcard.access.smart import Scopes


@dataclass(frozen=True)
class AccessContext:
    actor: str  # "Practitioner/12", "Patient/7", "system:cli", "client:lab-1"
    scopes: Scopes
    client_id: str = ""
    # The patient compartments a patient/ launch is limited to (the patient and their
    # dependants).  Empty for callers without a patient context.
    patient_ids: frozenset[str] = frozenset()
    purpose: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def system(cls, actor: str = "system:cli", purpose: str = "") -> AccessContext:
        return cls(actor=actor, scopes=Scopes.parse("system/*.cruds"), purpose=purpose)
