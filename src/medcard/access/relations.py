"""Care relations as SQL: which patients a practitioner or a lab is related to.

A practitioner may open the cards of patients attached to one of their organisations
(Patient.managingOrganization), whose attending physician they are
(Patient.generalPractitioner), or who have an active encounter, referral or episode
of care at one of their organisations; plus patients opened through emergency access.
The relations are read from the search index, so they cost one indexed sub-select
and stay current as records change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, literal, select, union

from medcard.db.sql import by_resource
from medcard.db.tables import sp_reference, sp_token

ACTIVE_ENCOUNTER = ("planned", "arrived", "triaged", "in-progress", "onleave")
ACTIVE_REQUEST = ("active", "on-hold", "draft")
ACTIVE_EPISODE = ("planned", "waitlist", "active", "onhold")


def _status_in(resource_type: str, codes: tuple[str, ...]) -> Any:
    t = sp_token.alias()
    return exists(
        select(literal(1))
        .select_from(t)
        .where(
            t.c.resource_type == resource_type,
            t.c.resource_id == sp_reference.c.resource_id,
            by_resource(t.c.param) == "status",
            t.c.code.in_(codes),
        )
    )


def _via(
    resource_type: str, param: str, target_type: str, ids: list[str], codes: tuple[str, ...]
) -> Any:
    ref = sp_reference
    return select(ref.c.patient_id).where(
        ref.c.resource_type == resource_type,
        ref.c.param == param,
        ref.c.target_type == target_type,
        ref.c.target_id.in_(ids),
        _status_in(resource_type, codes),
    )


def practitioner_patients(organizations: frozenset[str], practitioner_id: str) -> Any:
    """Patient ids related to a practitioner through their organisations or as attending."""
    ref = sp_reference
    orgs = sorted(organizations)
    parts = [
        select(ref.c.resource_id).where(
            ref.c.resource_type == "Patient",
            ref.c.param == "organization",
            ref.c.target_type == "Organization",
            ref.c.target_id.in_(orgs),
        ),
        _via("Encounter", "service-provider", "Organization", orgs, ACTIVE_ENCOUNTER),
        _via("ServiceRequest", "performer", "Organization", orgs, ACTIVE_REQUEST),
        _via("ServiceRequest", "requester", "Organization", orgs, ACTIVE_REQUEST),
        _via("EpisodeOfCare", "organization", "Organization", orgs, ACTIVE_EPISODE),
    ]
    if practitioner_id:
        parts.append(
            select(ref.c.resource_id).where(
                ref.c.resource_type == "Patient",
                ref.c.param == "general-practitioner",
                ref.c.target_type == "Practitioner",
                ref.c.target_id == practitioner_id,
            )
        )
    return union(*parts)


def lab_patients(organizations: frozenset[str]) -> Any:
    """Patients with an active referral addressed to one of the lab's organisations."""
    return _via(
        "ServiceRequest", "performer", "Organization", sorted(organizations), ACTIVE_REQUEST
    )


def referral_addressed_to(request_id: str, organizations: frozenset[str]) -> Any:
    """EXISTS: ServiceRequest ``request_id`` is active and names one of these performers."""
    ref = sp_reference
    return exists(
        select(literal(1)).where(
            and_(
                ref.c.resource_type == "ServiceRequest",
                ref.c.resource_id == request_id,
                ref.c.param == "performer",
                ref.c.target_type == "Organization",
                ref.c.target_id.in_(sorted(organizations)),
                _status_in("ServiceRequest", ACTIVE_REQUEST),
            )
        )
    )


def review_targets(organizations: frozenset[str]) -> Any:
    """(type, id) of entries disputed in correction Tasks owned by the reviewer's authority
    (``Task.focus`` and every ``Task.input.valueReference``: the disputed entries and the
    patient's attachments), and those Tasks themselves."""
    ref = sp_reference
    owned = select(ref.c.resource_id).where(
        ref.c.resource_type == "Task",
        ref.c.param == "owner",
        ref.c.target_type == "Organization",
        ref.c.target_id.in_(sorted(organizations)),
    )
    focus = select(ref.c.target_type, ref.c.target_id).where(
        ref.c.resource_type == "Task",
        ref.c.param.in_(("focus", "input-reference")),
        ref.c.resource_id.in_(owned),
        ref.c.target_type.is_not(None),
    )
    tasks = select(literal("Task"), ref.c.resource_id).where(
        ref.c.resource_type == "Task",
        ref.c.param == "owner",
        ref.c.target_type == "Organization",
        ref.c.target_id.in_(sorted(organizations)),
    )
    return union(focus, tasks, insurer_lines(organizations))


def insurer_lines(organizations: frozenset[str]) -> Any:
    """(type, id) of service lines (ChargeItem) billed to an insurer among these
    organisations: their ``account`` is the insurer's OMS ledger ``Account/oms-<org>``
    (issue 9).  Only the lines: the card behind them stays closed."""
    ref = sp_reference
    return select(literal("ChargeItem"), ref.c.resource_id).where(
        ref.c.resource_type == "ChargeItem",
        ref.c.param == "account",
        ref.c.target_type == "Account",
        ref.c.target_id.in_([f"oms-{o}"[:64] for o in sorted(organizations)]),
    )


def billed_by(organizations: frozenset[str]) -> Any:
    """(type, id) of service lines (ChargeItem) performed by these organisations: what a
    polyclinic's administrator sees of its own billing (issue 9)."""
    ref = sp_reference
    return select(literal("ChargeItem"), ref.c.resource_id).where(
        ref.c.resource_type == "ChargeItem",
        ref.c.param == "performing-organization",
        ref.c.target_type == "Organization",
        ref.c.target_id.in_(sorted(organizations)),
    )
