"""The CapabilityStatement: exactly what this server supports, built from the registry."""

from __future__ import annotations

from functools import cache
from typing import Any

from medcard import __version__
from medcard.fhir import spec
from medcard.fhir.search.registry import params_for

INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
READ_ONLY = {"AuditEvent"}

# SMART App Launch: where apps find the OAuth endpoints from the CapabilityStatement
# (https://hl7.org/fhir/smart-app-launch/conformance.html; the extension is the one
# SMART v1 defined, still read by many clients).  The paths are the ones
# /.well-known/smart-configuration announces (auth/oauth/discovery.py; a test keeps
# the two in step), on the server root, one level above the FHIR base.
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
OAUTH_PATHS = {
    "authorize": "/oauth/authorize",
    "token": "/oauth/token",
    "revoke": "/oauth/revoke",
    "introspect": "/oauth/introspect",
}


@cache
def _resources() -> list[dict[str, Any]]:
    out = []
    for rtype in sorted(spec.resource_types()):
        interactions = ["read", "search-type"] if rtype in READ_ONLY else INTERACTIONS
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": c} for c in interactions],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "local"],
            "searchParam": [
                {"name": name, "type": p.type} for name, p in sorted(params_for(rtype).items())
            ],
        }
        if rtype in READ_ONLY:
            entry["searchParam"] = [
                {"name": n, "type": t}
                for n, t in (
                    ("patient", "reference"),
                    ("date", "date"),
                    ("agent", "reference"),
                    ("entity", "reference"),
                    ("subtype", "token"),
                    ("action", "token"),
                )
            ]
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        out.append(entry)
    return out


def _oauth_uris(base_url: str) -> dict[str, Any]:
    root = base_url.rstrip("/").removesuffix("/fhir")
    return {
        "url": OAUTH_URIS,
        "extension": [{"url": name, "valueUri": root + path} for name, path in OAUTH_PATHS.items()],
    }


def statement(base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "medcard",
        "kind": "instance",
        "software": {"name": "medcard", "version": __version__},
        "implementation": {"description": "medcard FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "extension": [_oauth_uris(base_url)],
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer JWT issued by this server; SMART v2 scopes enforced per request",
                },
                "resource": _resources(),
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
                "searchParam": [
                    {"name": "_id", "type": "token"},
                    {"name": "_lastUpdated", "type": "date"},
                ],
            }
        ],
    }
