"""Registered OAuth clients: apps (public or confidential, PKCE) and systems (confidential).

An app (authorization code grant) may be registered for ``patient/`` scopes, used when
a patient authorizes it, and ``user/`` scopes, used when a member of staff does; each
person gets only their own kind (``scopes.allowance_for``).

A public client has no secret and may only use the authorization code grant (with
PKCE) and refresh tokens.  A confidential client authenticates with a secret
(``client_secret_basic`` or ``client_secret_post``).  Secrets are generated here, 256
bits of randomness, shown once and stored as a SHA-256 hash: with that much entropy a
slow password hash adds nothing, and the token endpoint stays fast.

Redirect URIs are compared exactly (RFC 9700 §4.1.3): no prefix, no pattern, so an
authorization response can only ever go where the client was registered to receive it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, insert, select, update

from medcard import clock
from medcard.auth.oauth import scopes as sc
from medcard.db.tables import oauth_clients, oauth_codes, oauth_tokens

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name
CLIENT_CREDENTIALS = "client_credentials"
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS)
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
_HASH_PREFIX = "sha256:"


class ClientError(ValueError):
    """A client registration that would be unsafe or cannot work."""


@dataclass(frozen=True)
class OAuthClient:
    """A registered client, shaped for Authlib's ``ClientMixin`` protocol."""

    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    organization_ref: str = ""
    active: bool = True
    created: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def public(self) -> bool:
        return self.secret_hash is None

    @property
    def kind(self) -> str:
        return "public" if self.public else "confidential"

    # -- Authlib ClientMixin -------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # SMART requires redirect_uri on every authorization request; no default.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        # Authlib's first pass; the grant narrows again for the person who authorizes.
        granted = sc.grant(scope, self.scope, sc.APP)
        return str(granted)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and AUTHORIZATION_CODE in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def hash_secret(secret: str) -> str:
    return _HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def _from_row(row: Any) -> OAuthClient:
    return OAuthClient(
        client_id=row.client_id,
        name=row.name,
        secret_hash=row.secret_hash,
        redirect_uris=tuple(json.loads(row.redirect_uris or "[]")),
        grant_types=tuple(json.loads(row.grant_types or "[]")),
        scope=row.scope,
        organization_ref=row.organization_ref,
        active=bool(row.active),
        created=int(row.created),
    )


def get_client(
    engine: Engine, client_id: str, *, include_inactive: bool = False
) -> OAuthClient | None:
    if not client_id or len(client_id) > 64 or "\x00" in client_id:
        return None  # NUL: no such client, and PostgreSQL refuses it in a query (fuzzer)
    with engine.connect() as conn:
        row = conn.execute(
            select(oauth_clients).where(oauth_clients.c.client_id == client_id)
        ).first()
    if row is None:
        return None
    client = _from_row(row)
    return client if client.active or include_inactive else None


def list_clients(engine: Engine) -> list[OAuthClient]:
    with engine.connect() as conn:
        rows = conn.execute(select(oauth_clients).order_by(oauth_clients.c.created)).all()
    return [_from_row(r) for r in rows]


def create_client(
    engine: Engine,
    name: str,
    *,
    public: bool,
    scope: str,
    redirect_uris: list[str] | tuple[str, ...] = (),
    grant_types: list[str] | tuple[str, ...] = (),
    organization_ref: str = "",
    client_id: str | None = None,
) -> tuple[OAuthClient, str | None]:
    """Register a client; returns it and, for a confidential client, its secret (shown once)."""
    name = name.strip()
    if not name:
        raise ClientError("A client needs a name (it is shown to patients on the consent page)")
    grants = tuple(dict.fromkeys(grant_types)) or _default_grants(public, redirect_uris)
    unknown = [g for g in grants if g not in GRANT_TYPES]
    if unknown:
        raise ClientError(f"Unknown grant type(s): {', '.join(unknown)}")
    if public and CLIENT_CREDENTIALS in grants:
        raise ClientError("client_credentials needs a confidential client (with a secret)")
    if AUTHORIZATION_CODE in grants and not redirect_uris:
        raise ClientError("authorization_code needs at least one --redirect-uri")
    if REFRESH_TOKEN in grants and AUTHORIZATION_CODE not in grants:
        raise ClientError("refresh_token is only issued with authorization_code")
    for uri in redirect_uris:
        _check_redirect_uri(uri)
    scope = _check_scope(scope, grants)
    cid = client_id or secrets.token_hex(8)
    if not _CLIENT_ID.match(cid):
        raise ClientError("A client id is 3-64 letters, digits, '.', '_' or '-'")
    if get_client(engine, cid, include_inactive=True) is not None:
        raise ClientError(f"A client with id {cid!r} already exists")
    if organization_ref and not re.match(r"^Organization/[A-Za-z0-9\-.]{1,64}$", organization_ref):
        raise ClientError("--organization must be a reference like Organization/123")
    secret = None if public else secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=cid,
        name=name,
        secret_hash=None if secret is None else hash_secret(secret),
        redirect_uris=tuple(redirect_uris),
        grant_types=grants,
        scope=scope,
        organization_ref=organization_ref,
        created=clock.now_micros(),
    )
    with engine.begin() as conn:
        conn.execute(
            insert(oauth_clients).values(
                client_id=client.client_id,
                name=client.name,
                secret_hash=client.secret_hash,
                redirect_uris=json.dumps(list(client.redirect_uris)),
                grant_types=json.dumps(list(client.grant_types)),
                scope=client.scope,
                organization_ref=client.organization_ref,
                active=True,
                created=client.created,
            )
        )
    return client, secret


def revoke_client(engine: Engine, client_id: str) -> bool:
    """Deactivate a client and everything it holds: its codes and tokens stop working."""
    with engine.begin() as conn:
        n = conn.execute(
            update(oauth_clients)
            .where(oauth_clients.c.client_id == client_id, oauth_clients.c.active.is_(True))
            .values(active=False)
        ).rowcount
        conn.execute(
            update(oauth_tokens).where(oauth_tokens.c.client_id == client_id).values(revoked=True)
        )
        conn.execute(
            update(oauth_codes).where(oauth_codes.c.client_id == client_id).values(used=True)
        )
    return bool(n)


def _default_grants(public: bool, redirect_uris: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if public or redirect_uris:
        return (AUTHORIZATION_CODE, REFRESH_TOKEN)
    return (CLIENT_CREDENTIALS,)


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.fragment or "#" in uri:
        raise ClientError(f"A redirect URI must not have a fragment: {uri}")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and loopback:
        return  # RFC 8252 §7.3: native apps on the loopback interface
    if (
        parts.scheme
        and parts.scheme not in ("http", "https", "javascript", "data", "file")
        and ("." in parts.scheme)
    ):
        return  # RFC 8252 §7.1: private-use scheme of a native app (reverse domain name)
    raise ClientError(
        f"A redirect URI must be https://..., http://localhost or a reverse-domain app scheme: {uri}"
    )


def _check_scope(scope: str, grants: tuple[str, ...]) -> str:
    allowance = sc.SYSTEM if CLIENT_CREDENTIALS in grants else sc.APP
    if CLIENT_CREDENTIALS in grants and AUTHORIZATION_CODE in grants:
        raise ClientError(
            "Register systems (client_credentials) and patient apps (authorization_code) "
            "as separate clients: their scopes differ in kind"
        )
    words = scope.split()
    granted = sc.restrict(sc.parse(scope), allowance)
    lost = sc.narrowed(scope, granted)
    if lost:
        kind = (
            "system/ scopes"
            if allowance is sc.SYSTEM
            else "patient/ and user/ scopes and " + ", ".join(sorted(sc.PATIENT_APP_WORDS))
        )
        raise ClientError(
            f"Scope(s) {' '.join(lost)} not allowed here; this client may hold {kind}"
        )
    if not words or not granted.scopes:
        raise ClientError("A client needs at least one resource scope, e.g. patient/Observation.cr")
    return str(granted)
