"""Whether a feature is on for a patient's region, and the refusal when it is not."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from medcard.fhir.outcomes import FhirError
from medcard.regions.config import RegionConfig, get_region
from medcard.regions.features import ALL_FEATURES, FEATURE_NAMES, Feature
from medcard.regions.lookup import region_of_patient


@dataclass(frozen=True)
class PatientRegion:
    """The region that applies to a patient; ``config`` None means the platform defaults."""

    code: str | None
    config: RegionConfig | None

    @property
    def features(self) -> frozenset[Feature]:
        return self.config.settings.features if self.config is not None else ALL_FEATURES

    def enabled(self, feature: Feature) -> bool:
        return feature in self.features

    @property
    def time_zone(self) -> str:
        return self.config.time_zone if self.config is not None else "Europe/Moscow"


class FeatureDisabledError(FhirError):
    """A 403 whose reason names the feature and the region (pages show it too)."""

    def __init__(self, feature: Feature, region: RegionConfig) -> None:
        super().__init__(
            403,
            "forbidden",
            f"{FEATURE_NAMES[feature].capitalize()} is turned off in region "
            f"{region.code} ({region.name})",
        )
        self.feature = feature
        self.region = region


def patient_region(engine: Engine, patient_id: str) -> PatientRegion:
    code = region_of_patient(engine, patient_id)
    return PatientRegion(code, get_region(engine, code) if code else None)


def require_feature(engine: Engine, patient_id: str, feature: Feature) -> PatientRegion:
    """The patient's region if ``feature`` is on there; FeatureDisabledError (403) if not."""
    region = patient_region(engine, patient_id)
    if region.config is not None and not region.enabled(feature):
        raise FeatureDisabledError(feature, region.config)
    return region


def region_enabled(engine: Engine, region_code: str, feature: Feature) -> bool:
    """For pages that know the region but not a patient (sign-in, registration)."""
    config = get_region(engine, region_code)
    return config is None or config.enabled(feature)
