"""``/.well-known/smart-configuration``: how apps find our OAuth endpoints and abilities,
and ``/.well-known/openid-configuration``: the same server to OpenID Connect clients.

SMART App Launch 2.x, "Conformance" (https://hl7.org/fhir/smart-app-launch/conformance.html).
Served at the server root and under the FHIR base (``/fhir/.well-known/...``), where
SMART clients look for it.  OpenID Connect Discovery 1.0 §3: the ``issuer`` is the
server's public base URL, the ``iss`` of every token it mints (issue 22).
"""

from __future__ import annotations

from typing import Any

from medcard.auth.oauth.clients import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, REFRESH_TOKEN

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path
REVOKE_PATH = "/oauth/revoke"
INTROSPECT_PATH = "/oauth/introspect"
JWKS_PATH = "/.well-known/jwks.json"

CAPABILITIES = [
    "launch-standalone",
    "sso-openid-connect",
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


# What an ID token says (auth/oauth/server.py ``_id_token``).
ID_TOKEN_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "nonce", "fhirUser"]


def smart_configuration(base_url: str) -> dict[str, Any]:
    """The discovery document; ``base_url`` is the server root (no trailing slash)."""
    return {
        "issuer": base_url,
        "jwks_uri": base_url + JWKS_PATH,
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


def openid_configuration(base_url: str) -> dict[str, Any]:
    """OpenID Provider metadata (OpenID Connect Discovery 1.0 §3); no userinfo endpoint:
    the ID token carries all there is (``sub``, and ``fhirUser`` when asked for)."""
    return {
        "issuer": base_url,
        "authorization_endpoint": base_url + AUTHORIZE_PATH,
        "token_endpoint": base_url + TOKEN_PATH,
        "jwks_uri": base_url + JWKS_PATH,
        "revocation_endpoint": base_url + REVOKE_PATH,
        "introspection_endpoint": base_url + INTROSPECT_PATH,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": ID_TOKEN_CLAIMS,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "ui_locales_supported": ["ru", "en"],
    }
