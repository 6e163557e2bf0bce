"""The time zone a page shows instants in: the patient's region's, else the reader's.

Issue 14 item 10: every time a person reads is in the time zone of the patient's
region (``regions.time_zone``), with the zone named.  A page about one patient uses
that patient's region (``regions.lookup.region_of_patient``); a staff page about no
single patient uses the region of the staff member's organisation, else the region on
their account; failing all of these, Moscow (the platform's default zone).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine

from medcard.regions.config import DEFAULT_TIME_ZONE, get_region
from medcard.regions.lookup import region_of_organization, region_of_patient
from medcard.ru_dates import Times

DEFAULT_ZONE = ZoneInfo(DEFAULT_TIME_ZONE)


def _zone_of_region(engine: Engine, code: str | None) -> ZoneInfo | None:
    config = get_region(engine, code) if code else None
    if config is None:
        return None
    try:
        return config.zone
    except (ZoneInfoNotFoundError, ValueError):  # checked on save; a hand-edited row
        return None


def zone_of(
    engine: Engine, *, patient_id: str = "", organization_ref: str = "", region: str = ""
) -> tuple[ZoneInfo, str]:
    """The zone and whose region it is ("patient", "organization" or "default")."""
    if patient_id:
        zone = _zone_of_region(engine, region_of_patient(engine, patient_id))
        if zone is not None:
            return zone, "patient"
    org_id = organization_ref.removeprefix("Organization/")
    if org_id:
        zone = _zone_of_region(engine, region_of_organization(engine, org_id))
        if zone is not None:
            return zone, "organization"
    if region:
        zone = _zone_of_region(engine, region)
        if zone is not None:
            return zone, "organization"
    return DEFAULT_ZONE, "default"


def times_of(
    engine: Engine,
    lang: str,
    *,
    patient_id: str = "",
    organization_ref: str = "",
    region: str = "",
) -> Times:
    """How a page shows instants (``ru_dates.Times``) for this patient or staff member."""
    zone, basis = zone_of(
        engine, patient_id=patient_id, organization_ref=organization_ref, region=region
    )
    return Times(zone, lang, basis)
