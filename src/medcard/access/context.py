"""Who is asking, on whose behalf, and with which SMART scopes.

Every store call takes an AccessContext; there is no query path without one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from medcard.access.roles import Role
from medcard.access.smart import Scopes


@dataclass(frozen=True)
class AccessContext:
    actor: str  # "Practitioner/12", "Patient/7", "Client/lab-1", "system:cli"
    scopes: Scopes
    client_id: str = ""
    # The patient compartments a patient/ launch is limited to (the patient and their
    # dependants).  Empty for callers without a patient context.
    patient_ids: frozenset[str] = frozenset()
    purpose: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The caller's role decides what it may do at all; None only for system callers
    # holding system/ scopes (CLI, jobs, trusted back-office clients).
    role: Role | None = None
    organizations: frozenset[str] = frozenset()  # Organization ids the caller works for
    account_id: str = ""
    # Patients this practitioner opened through emergency access ("break glass"),
    # still valid at the start of the request.
    emergency_patients: frozenset[str] = frozenset()

    @classmethod
    def system(cls, actor: str = "system:cli", purpose: str = "") -> AccessContext:
        return cls(actor=actor, scopes=Scopes.parse("system/*.cruds"), purpose=purpose)

    @property
    def acts_for_patient(self) -> bool:
        """Whether the patient rules apply (compartment, what may be changed, the tag).

        Decided from what the caller is (a Patient subject, or a patient context
        without a staff role), never from an optional role claim alone: a token
        without ``role`` acting as ``Patient/…`` is a patient (issue 17).
        """
        if self.role == Role.PATIENT:
            return True
        if self.role is None:
            return self.actor.startswith("Patient/") or bool(self.patient_ids)
        # Role.SYSTEM: tokens cannot combine it with a patient (auth.tokens refuses
        # them); in code it marks a service acting on someone's behalf with system
        # scopes, the person named as actor for the audit only.
        return False

    @property
    def practitioner_id(self) -> str:
        return self.actor.split("/", 1)[1] if self.actor.startswith("Practitioner/") else ""
