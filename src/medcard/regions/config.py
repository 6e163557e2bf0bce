"""Region configuration: stored in the ``regions`` table, changed by region admins.

A region is a subject of the Federation (code "77" Москва, "78" Санкт-Петербург).
Its row holds the name, the IANA time zone (diary days and deadlines are counted in
it) and a JSON document of settings: enabled features, the organisations that belong
to it, the SSO provider key (``Settings.sso_providers``) and the number of days a
document request may take.  Every change is one transaction: the new row, a
``region_changes`` row with the configuration before and after, and an audit entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine, insert, select, update

from medcard.access.context import AccessContext
from medcard.access.smart import Scopes
from medcard.audit.recorder import SUCCESS, AuditBuffer
from medcard.clock import now_micros
from medcard.db.tables import region_changes, regions
from medcard.regions.features import ALL_FEATURES, Feature

DEFAULT_TIME_ZONE = "Europe/Moscow"
DEFAULT_DOCUMENT_DAYS = 1  # business days; the model system promises one


class RegionSettings(BaseModel):
    """The JSON settings of one region; unknown keys are refused so typos do not pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: frozenset[Feature] = ALL_FEATURES
    organizations: tuple[str, ...] = ()  # Organization ids (org-77-gp12)
    sso_provider: str = ""  # key in MEDCARD_SSO_PROVIDERS; "" = the region code
    document_request_days: int = Field(DEFAULT_DOCUMENT_DAYS, ge=1, le=365)

    @field_validator("organizations")
    @classmethod
    def _orgs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for org in v:
            org_id = org.strip().removeprefix("Organization/")
            if not org_id:
                continue
            if len(org_id) > 64 or not all(c.isalnum() or c in "-." for c in org_id):
                raise ValueError(f"not an Organization id: {org!r}")
            out.append(org_id)
        return tuple(dict.fromkeys(out))


class RegionError(ValueError):
    """A configuration that cannot be saved; ``key`` names the page text for it."""

    def __init__(self, key: str, detail: str = "") -> None:
        super().__init__(detail or key)
        self.key = key


@dataclass(frozen=True)
class RegionConfig:
    code: str
    name: str
    time_zone: str = DEFAULT_TIME_ZONE
    settings: RegionSettings = field(default_factory=RegionSettings)
    updated: int = 0
    updated_by: str = ""

    def enabled(self, feature: Feature) -> bool:
        return feature in self.settings.features

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "time_zone": self.time_zone,
            "settings": self.settings.model_dump(mode="json"),
        }


def _settings_json(settings: RegionSettings) -> str:
    data = settings.model_dump(mode="json")
    data["features"] = sorted(data["features"])
    return orjson.dumps(data).decode()


def make_config(
    code: str,
    name: str,
    time_zone: str,
    settings: dict[str, Any] | RegionSettings,
) -> RegionConfig:
    """Validate a configuration (from a form or the seed); RegionError says what is wrong."""
    code = code.strip()
    if not (code.isascii() and code.isalnum() and 1 <= len(code) <= 16):
        raise RegionError("region_bad_code", f"region codes are 1-16 letters or digits: {code!r}")
    name = name.strip()
    if not name or len(name) > 200:
        raise RegionError("region_bad_name")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RegionError("region_bad_time_zone", f"unknown time zone {time_zone!r}") from None
    if time_zone not in available_timezones():
        raise RegionError("region_bad_time_zone", f"unknown time zone {time_zone!r}")
    try:
        parsed = (
            settings
            if isinstance(settings, RegionSettings)
            else RegionSettings.model_validate(settings)
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RegionError(f"region_bad_{first['loc'][0]}", f"{where}: {first['msg']}") from None
    return RegionConfig(code, name, time_zone, parsed)


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A read-only connection: on SQLite a deferred BEGIN, so a lookup made while a
    writer holds the lock (the FHIR write hook) does not queue behind it."""
    with engine.connect() as conn:
        conn.execution_options(readonly=True)
        yield conn


def _from_row(row: Any) -> RegionConfig:
    settings = RegionSettings.model_validate(orjson.loads(row.settings))
    return RegionConfig(row.code, row.name, row.time_zone, settings, row.updated, row.updated_by)


def get_region(engine: Engine, code: str) -> RegionConfig | None:
    with _reading(engine) as conn:
        row = conn.execute(select(regions).where(regions.c.code == code)).first()
    return _from_row(row) if row is not None else None


def list_regions(engine: Engine) -> list[RegionConfig]:
    with _reading(engine) as conn:
        rows = conn.execute(select(regions).order_by(regions.c.code)).all()
    return [_from_row(r) for r in rows]


def save_region(engine: Engine, config: RegionConfig, actor: str) -> RegionConfig:
    """Create or change a region; the change log row and the audit entry commit with it."""
    now = now_micros()
    values = {
        "name": config.name,
        "time_zone": config.time_zone,
        "settings": _settings_json(config.settings),
        "updated": now,
        "updated_by": actor[:128],
    }
    buffer = AuditBuffer(AccessContext(actor, Scopes(()), client_id="web"))
    with engine.begin() as conn:
        row = conn.execute(
            select(regions).where(regions.c.code == config.code).with_for_update()
        ).first()
        before = _from_row(row) if row is not None else None
        if before is not None:
            conn.execute(update(regions).where(regions.c.code == config.code).values(**values))
        else:
            conn.execute(insert(regions).values(code=config.code, **values))
        saved = RegionConfig(
            config.code, config.name, config.time_zone, config.settings, now, actor
        )
        conn.execute(
            insert(region_changes).values(
                region=config.code,
                changed=now,
                actor=actor[:128],
                before=orjson.dumps(before.as_json()).decode() if before else "",
                after=orjson.dumps(saved.as_json()).decode(),
            )
        )
        buffer.add(
            "region-change",
            "",
            "",
            outcome=SUCCESS,
            detail=f"region {config.code}: {describe_change(before, saved)}"[:500],
        )
        buffer.flush(conn)
    return saved


def describe_change(before: RegionConfig | None, after: RegionConfig) -> str:
    """A one-line summary for the audit log: what was turned on or off, what changed."""
    if before is None:
        return "created"
    parts = []
    on = sorted(after.settings.features - before.settings.features)
    off = sorted(before.settings.features - after.settings.features)
    if on:
        parts.append("enabled " + ", ".join(on))
    if off:
        parts.append("disabled " + ", ".join(off))
    for label, old, new in (
        ("name", before.name, after.name),
        ("time zone", before.time_zone, after.time_zone),
        ("SSO provider", before.settings.sso_provider, after.settings.sso_provider),
        (
            "document request days",
            before.settings.document_request_days,
            after.settings.document_request_days,
        ),
        (
            "organisations",
            ",".join(before.settings.organizations),
            ",".join(after.settings.organizations),
        ),
    ):
        if old != new:
            parts.append(f"{label} {old or '-'} -> {new or '-'}")
    return "; ".join(parts) or "no change"


@dataclass(frozen=True)
class RegionChange:
    changed: int
    actor: str
    before: dict[str, Any]
    after: dict[str, Any]


def changes(engine: Engine, code: str, limit: int = 50) -> list[RegionChange]:
    with _reading(engine) as conn:
        rows = conn.execute(
            select(region_changes)
            .where(region_changes.c.region == code)
            .order_by(region_changes.c.changed.desc(), region_changes.c.id.desc())
            .limit(limit)
        ).all()
    return [
        RegionChange(
            r.changed,
            r.actor,
            orjson.loads(r.before) if r.before else {},
            orjson.loads(r.after),
        )
        for r in rows
    ]


# The demo's regions differ, so a newcomer sees the difference on /regions (issue 19):
# Moscow with everything, St Petersburg without family history, and a region with no
# organisations in the demo data, reached only through Gosuslugi (no self-registration)
# and without the diary, in another time zone.
DEMO_FEATURES: dict[str, frozenset[Feature]] = {
    "77": ALL_FEATURES,
    "78": ALL_FEATURES - {Feature.FAMILY_HISTORY},
    "66": ALL_FEATURES - {Feature.DIARY, Feature.REGISTRATION},
}
DEMO_EXTRA_REGIONS: tuple[tuple[str, str, str, int], ...] = (
    ("66", "Свердловская область", "Asia/Yekaterinburg", 3),  # code, name, zone, days
)


def seed_demo_regions(engine: Engine) -> list[RegionConfig]:
    """The demo's regions (:data:`DEMO_FEATURES`); regions already configured stay as
    they are."""
    from medcard.demo import catalogs as cat

    planned = [
        (
            region.code,
            region.name,
            DEFAULT_TIME_ZONE,  # both demo regions with data keep Moscow time
            RegionSettings(
                features=DEMO_FEATURES.get(region.code, ALL_FEATURES),
                organizations=tuple(
                    f"org-{region.code}-{spec.key}" for spec in cat.ORGANIZATIONS[region.code]
                ),
            ),
        )
        for region in cat.REGIONS
    ]
    planned += [
        (
            code,
            name,
            zone,
            RegionSettings(
                features=DEMO_FEATURES.get(code, ALL_FEATURES), document_request_days=days
            ),
        )
        for code, name, zone, days in DEMO_EXTRA_REGIONS
    ]
    out = []
    for code, name, zone, settings in planned:
        existing = get_region(engine, code)
        if existing is not None:
            out.append(existing)
            continue
        out.append(save_region(engine, make_config(code, name, zone, settings), "system:demo"))
    return out
