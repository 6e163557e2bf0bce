"""What a region can turn on or off, as named data."""

from __future__ import annotations

from enum import StrEnum


class Feature(StrEnum):
    FAMILY_HISTORY = "family-history"  # patients record their relatives' illnesses
    DIARY = "diary"  # the well-being diary, its apps and home-monitor imports
    SSO = "sso"  # «Войти через Госуслуги» for this region's provider
    REGISTRATION = "registration"  # self-registration of patients (/register)
    EXTRACTS = "extracts"  # signed extracts from the card
    DOCUMENT_REQUESTS = "document-requests"  # patients request certificates online


# A region the configuration does not know (or a patient with no attachment yet) gets
# the platform's defaults: every feature, so nothing silently disappears.
ALL_FEATURES = frozenset(Feature)

# Texts for the reason a refusal gives (API diagnostics are in English, like every
# OperationOutcome of the server; pages show the Russian or English title instead).
FEATURE_NAMES = {
    Feature.FAMILY_HISTORY: "family history",
    Feature.DIARY: "the well-being diary",
    Feature.SSO: "sign-in through the national SSO",
    Feature.REGISTRATION: "self-registration",
    Feature.EXTRACTS: "extracts from the card",
    Feature.DOCUMENT_REQUESTS: "document requests",
}
