"""The demo's regions, which differ so that a newcomer sees the difference on /regions
(issue 19): Moscow with everything, St Petersburg without family history, and a region
with no organisations in the demo data, reached only through Gosuslugi (no
self-registration) and without the diary, in another time zone."""

from __future__ import annotations

from sqlalchemy import Engine

from medcard.demo import catalogs as cat
from medcard.regions.config import (
    DEFAULT_TIME_ZONE,
    RegionConfig,
    RegionSettings,
    get_region,
    make_config,
    save_region,
)
from medcard.regions.features import ALL_FEATURES, Feature

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
