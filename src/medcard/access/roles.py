"""Roles and the permissions they carry, as named data.

Permissions have a small grammar (``area:verb``).  A role maps to permissions here and
nowhere else; SMART scopes on a token can only narrow what the role allows.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    PRACTITIONER = "practitioner"
    REGISTRAR = "registrar"
    ORG_ADMIN = "org_admin"
    REVIEWER = "reviewer"
    REGION_ADMIN = "region_admin"
    LAB = "lab"  # an integration: laboratory or imaging centre delivering results
    SYSTEM = "system"  # trusted back-office jobs and the CLI


class Permission(StrEnum):
    RECORD_READ = "record:read"  # clinical content of cards the caller is related to
    RECORD_WRITE = "record:write"
    OWN_RECORD_READ = "own-record:read"  # a patient's own card and dependants'
    PATIENT_ENTERED_WRITE = "patient-entered:write"
    DEMOGRAPHICS_READ = "demographics:read"
    DEMOGRAPHICS_WRITE = "demographics:write"  # Patient, attachments, coverage
    SHARED_WRITE = "shared:write"  # organisations, practitioners, locations
    RESULTS_DELIVER = "results:deliver"  # labs: results for referrals addressed to them
    CORRECTIONS_REVIEW = "corrections:review"
    BILLING_READ = (
        "billing:read"  # an organisation's own service lines (ChargeItem), no clinical content
    )
    BREAK_GLASS = "breakglass:use"
    AUDIT_OWN = "audit:read:own"
    AUDIT_REPORT = "audit:report"
    EVERYTHING = "everything"  # system callers only


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PATIENT: frozenset(
        {Permission.OWN_RECORD_READ, Permission.PATIENT_ENTERED_WRITE, Permission.AUDIT_OWN}
    ),
    Role.PRACTITIONER: frozenset(
        {
            Permission.RECORD_READ,
            Permission.RECORD_WRITE,
            Permission.DEMOGRAPHICS_READ,
            Permission.BREAK_GLASS,
            Permission.AUDIT_OWN,
        }
    ),
    Role.REGISTRAR: frozenset(
        {Permission.DEMOGRAPHICS_READ, Permission.DEMOGRAPHICS_WRITE, Permission.AUDIT_OWN}
    ),
    Role.ORG_ADMIN: frozenset(
        {
            Permission.DEMOGRAPHICS_READ,
            Permission.DEMOGRAPHICS_WRITE,
            Permission.SHARED_WRITE,
            Permission.BILLING_READ,
            Permission.AUDIT_OWN,
            Permission.AUDIT_REPORT,
        }
    ),
    Role.REGION_ADMIN: frozenset(
        {
            Permission.DEMOGRAPHICS_READ,
            Permission.SHARED_WRITE,
            Permission.AUDIT_OWN,
            Permission.AUDIT_REPORT,
        }
    ),
    Role.REVIEWER: frozenset({Permission.CORRECTIONS_REVIEW, Permission.AUDIT_OWN}),
    Role.LAB: frozenset({Permission.RESULTS_DELIVER}),
    Role.SYSTEM: frozenset({Permission.EVERYTHING}),
}

# "Demographics and attachments, not clinical content": what registrars and admins touch.
DEMOGRAPHIC_TYPES = frozenset(
    {
        "Patient",
        "RelatedPerson",
        "Coverage",
        "EpisodeOfCare",
        "Person",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Location",
        "HealthcareService",
        "Endpoint",
    }
)
# Resources a laboratory or imaging centre delivers against a referral.
RESULT_TYPES = frozenset(
    {
        "Observation",
        "DiagnosticReport",
        "ImagingStudy",
        "Media",
        "DocumentReference",
        "Specimen",
        "Provenance",
    }
)
# What a lab reads to do its work: the referrals addressed to it and whom they concern
# (not the rest of the card: other labs' results are none of its business).
LAB_READ_TYPES = frozenset({"ServiceRequest", "Patient", "Specimen"})


def has(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
