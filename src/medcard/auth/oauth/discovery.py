"""``/.well-known/smart-configuration``: how apps find our OAuth endpoints and abilities.

SMART App Launch 2.x, "Conformance" (https://hl7.org/fhir/smart-app-launch/conformance.html).
Served at the server root and under the FHIR base (``/fhir/.well-known/...``), where
SMART clients look for it.
"""

from __future__ import annotations

from typing import Any

from medcard.auth.oauth.clients import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, REFRESH_TOKEN

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path
REVOKE_PATH = "/oauth/revoke"
INTROSPECT_PATH = "/oauth/introspect"

CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "context-standalone-patient",
    "permission-patient",
    "permission-user",  # staff apps: user/ scopes within the role (issue 3)
    "permission-v1",
    "permission-v2",
    "permission-offline",
]

SCOPES_SUPPORTED = [
    "openid",
    "launch/patient",
    "offline_access",
    "fhirUser",
    "patient/*.cruds",
    "patient/*.rs",
    "user/*.cruds",
    "user/*.rs",
    "system/*.cruds",
    "system/*.rs",
]


def smart_configuration(base_url: str) -> dict[str, Any]:
    """The discovery document; ``base_url`` is the server root (no trailing slash)."""
    return {
        "authorization_endpoint": base_url + AUTHORIZE_PATH,
        "token_endpoint": base_url + TOKEN_PATH,
        "revocation_endpoint": base_url + REVOKE_PATH,
        "introspection_endpoint": base_url + INTROSPECT_PATH,
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "grant_types_supported": [AUTHORIZATION_CODE, CLIENT_CREDENTIALS, REFRESH_TOKEN],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }
