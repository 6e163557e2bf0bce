"""Page texts per area, in Russian and English; ``medcard.web.i18n`` merges them."""

from __future__ import annotations

from types import ModuleType

from medcard.web.texts import (
    billing,
    corrections,
    extracts,
    homes,
    onboarding,
    portal,
    regions,
    workspace,
)

AREAS: tuple[ModuleType, ...] = (
    billing,
    corrections,
    extracts,
    homes,
    onboarding,
    portal,
    regions,
    workspace,
)
