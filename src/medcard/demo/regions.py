"""The demo's regions (77 and 78) configured with every feature on."""

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


def seed_demo_regions(engine: Engine) -> list[RegionConfig]:
    """The demo's regions with every feature on; regions already configured stay as they are."""
    out = []
    for region in cat.REGIONS:
        existing = get_region(engine, region.code)
        if existing is not None:
            out.append(existing)
            continue
        orgs = tuple(f"org-{region.code}-{spec.key}" for spec in cat.ORGANIZATIONS[region.code])
        config = make_config(
            region.code,
            region.name,
            DEFAULT_TIME_ZONE,  # both demo regions keep Moscow time
            RegionSettings(organizations=orgs),
        )
        out.append(save_region(engine, config, "system:demo"))
    return out
