"""The authorization server: Authlib's framework-neutral OAuth 2.0 core, wired to medcard.

Authlib (``authlib.oauth2``) implements the protocol: RFC 6749 grants, RFC 7636 PKCE,
RFC 7009 revocation, RFC 7662 introspection.  This module supplies what it leaves to
the host: clients, codes and tokens in our tables, tokens that are medcard's own ES256
JWTs (so ``/fhir`` accepts them unchanged), SMART scope narrowing and the patient
launch context, and an audit entry for every issue, refusal and revocation.

It knows nothing of the web framework: the web layer hands in an ``HttpRequest``
(method, URL, headers, query, form) and gets back an ``HttpResponse`` or, for the
authorization endpoint, a ``Consent`` to render or a ``Problem`` to show.  Authlib is
synchronous; callers run these methods in a thread pool.

Flows:
* authorization code + PKCE (S256 only, required of every client, as SMART 2 asks),
  for apps; the code lives 60 s, is single-use and bound to client,
  redirect URI and challenge; a replayed code revokes what it produced.  A patient
  grants ``patient/`` scopes within one card: their own, or (a parent, a guardian) the
  one they pick on the consent screen, and the token names that card alone (issue 22);
  ``aud`` must name our FHIR base; tokens are issued by our public base URL, with
  ``aud`` = that FHIR base (OpenID Connect discovery agrees); a member of staff (practitioner,
  registrar, administrators, reviewer), only from a session that passed the second
  factor, grants ``user/`` scopes within their role's ceiling, and the token carries
  the role and organisations the access gate decides by (issue 3);
* refresh tokens (with ``offline_access``), rotated on every use; a reused one revokes
  its grant;
* client credentials for systems (labs, other portals), with ``system/`` scopes.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749 import grants as rfc6749_grants
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnsupportedTokenTypeError,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import Engine

from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.access.subjects import dependants, token_claims
from medcard.auth import epochs
from medcard.auth.oauth import audit, revocation, store
from medcard.auth.oauth import scopes as sc
from medcard.auth.oauth.clients import OAuthClient, get_client
from medcard.auth.oauth.store import ResourceOwner, TokenRecord
from medcard.auth.tokens import TokenError, TokenIssuer

BEARER = "Bearer"
_SECRET_OR_NONE = ["client_secret_basic", "client_secret_post", "none"]


# -- framework-neutral HTTP -------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]  # keys lower-cased
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: dict[str, Any] | str
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


@dataclass(frozen=True)
class Problem:
    """An authorization request that must not redirect anywhere: shown as an error page."""

    status: int
    error: str
    description: str


@dataclass(frozen=True)
class Consent:
    """A valid authorization request, waiting for the signed-in person's decision."""

    client: OAuthClient
    owner: ResourceOwner
    scopes: Scopes  # what Allow would grant
    not_granted: list[str]  # requested words that will not be granted
    redirect_uri: str
    # The cards a patient may open the app to (own first, then dependants'), when there
    # is a choice to make: the patient picker (issue 22).  Empty: the owner's own card.
    cards: list[str] = field(default_factory=list)


class _Headers(dict[str, str]):
    """Case-insensitive header look-up, as Authlib's Basic-auth parser expects."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class MedcardRequest(OAuth2Request):  # type: ignore[misc]
    """Authlib's request over our plain ``HttpRequest``.

    Parameters come from the query on the authorization endpoint and from the form
    body elsewhere (RFC 6749 §3.1, §3.2).  Authlib's constructor refuses non-HTTPS
    URLs outright; TLS is the deployment's job (a terminating proxy), so that check is
    left out here rather than faked.
    """

    def __init__(self, req: HttpRequest, *, params_from_query: bool, note: audit.Note) -> None:
        self.method = req.method
        self.uri = req.url
        self.headers = _Headers({k.lower(): v for k, v in req.headers.items()})
        self._body = None
        self._args = dict(req.query)
        self._form = dict(req.form)
        self.payload = FormPayload(req.query if params_from_query else req.form)
        # Set by Authlib as the request is validated (client, user, code or token).
        self.client: Any = None
        self.auth_method: str | None = None
        self.user: Any = None
        self.authorization_code: Any = None
        self.refresh_token: Any = None
        self.credential: Any = None
        self._scope: str | None = None
        self.note = note
        self.issued: _Issued | None = None
        self.patient_id = ""  # the card picked at authorization (issue 22)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class _Issued:
    jti: str
    exp: int
    scope: str
    refresh_token: str | None
    refresh_scope: str
    patient_id: str
    account_id: str


# -- grants -----------------------------------------------------------------------


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, required on every authorization request (SMART 2)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - Authlib's class attribute

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge and code_challenge_method=S256"
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is not accepted)")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: Any) -> str:
        return str(authorization_code.code_challenge)

    def get_authorization_code_challenge_method(self, authorization_code: Any) -> str:
        return str(authorization_code.code_challenge_method)


class AuthorizationCodeGrant(rfc6749_grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _SECRET_OR_NONE

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        server: MedcardAuthorizationServer = self.server
        req: MedcardRequest = self.request
        owner: ResourceOwner | None = req.user
        client: OAuthClient = req.client
        req.note.who(client_id=client.client_id)
        # SMART 2: the app names the FHIR server it means to use, so a token meant for
        # another server is never minted here (and one minted here is not sent there).
        aud = req.payload.data.get("aud")
        if not aud:
            raise InvalidRequestError(
                "aud is required: send this server's FHIR base URL", redirect_uri=redirect_uri
            )
        if aud.rstrip("/") not in server.fhir_bases(req):
            raise InvalidRequestError(
                "aud must be this server's FHIR base URL", redirect_uri=redirect_uri
            )
        allowance = _authorizer_allowance(owner, redirect_uri)
        granted = sc.grant(req.payload.scope, client.scope, allowance)
        if not granted.scopes:
            raise InvalidScopeError(
                "None of the requested resource scopes can be granted to this app",
                redirect_uri=redirect_uri,
            )
        req.scope = str(granted)
        return redirect_uri

    def save_authorization_code(self, code: str, request: MedcardRequest) -> None:
        owner: ResourceOwner = request.user
        data = request.payload.data
        store.save_code(
            self.server.engine,
            code,
            client_id=request.client.client_id,
            account_id=owner.account_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            code_challenge=data.get("code_challenge", ""),
            code_challenge_method=data.get("code_challenge_method", ""),
            patient_id=request.patient_id or owner.patient_id,
            nonce=data.get("nonce", ""),
        )

    def query_authorization_code(self, code: str, client: OAuthClient) -> store.AuthorizationCode:
        server: MedcardAuthorizationServer = self.server
        note: audit.Note = self.request.note
        try:
            found = store.claim_code(server.engine, code, client.client_id)
        except store.CodeRefusedError as refused:
            if refused.code is not None:
                note.who(patient_id=refused.code.patient_id)
            if refused.reason == "replayed" and refused.code is not None:
                revocation.forget(store.revoke_family(server.engine, refused.code.family))
                raise InvalidGrantError(
                    "The authorization code was already used; tokens issued for it are revoked"
                ) from None
            if refused.reason == "expired":
                raise InvalidGrantError(
                    f"The authorization code has expired (codes live {store.CODE_LIFETIME_S} s)"
                ) from None
            raise InvalidGrantError("The authorization code is not valid for this client") from None
        note.who(patient_id=found.patient_id)
        return found

    def delete_authorization_code(self, authorization_code: store.AuthorizationCode) -> None:
        """Nothing to do: ``claim_code`` marked it used before it was checked."""

    def authenticate_user(self, authorization_code: store.AuthorizationCode) -> ResourceOwner:
        owner = store.load_owner(self.server.engine, authorization_code.account_id)
        if owner is None or not owner.active:
            raise InvalidGrantError("The account that authorized this app is no longer active")
        if not may_open(self.server.engine, owner, authorization_code.patient_id):
            raise InvalidGrantError("The account may no longer open the card it chose")
        return owner

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        code: store.AuthorizationCode = self.request.authorization_code
        server: MedcardAuthorizationServer = self.server
        granted = sc.grant(code.scope, self.request.client.scope, _holder_allowance(user))
        return server.issue(
            self.request,
            owner=user,
            scopes=granted,
            refresh_scopes=granted if include_refresh_token else None,
            family=code.family,
            nonce=code.nonce,
            patient=code.patient_id,
        )


class RefreshTokenGrant(rfc6749_grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _SECRET_OR_NONE
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        server: MedcardAuthorizationServer = self.server
        req: MedcardRequest = self.request
        key = store.refresh_key(refresh_token)
        record = None if key is None else store.find_token(server.engine, key, "refresh")
        if record is None or record.client_id != req.client.client_id:
            raise InvalidGrantError("The refresh token is not valid for this client")
        req.note.who(patient_id=record.patient_id)
        if record.revoked:
            # RFC 9700 §4.14.2: a used (rotated) or revoked refresh token coming back
            # means it leaked; end the whole grant.
            revocation.forget(store.revoke_family(server.engine, record.family))
            raise InvalidGrantError(
                "The refresh token was already used or revoked; the app must ask the patient again"
            )
        if record.is_expired():
            raise InvalidGrantError("The refresh token has expired")
        return record

    def _validate_token_scope(self, token: TokenRecord) -> None:
        wanted = self.request.payload.scope
        if wanted and not sc.covers(sc.parse(token.scope), sc.parse(wanted)):
            raise InvalidScopeError("A refresh may only narrow the scope, never widen it")

    def authenticate_user(self, refresh_token: TokenRecord) -> ResourceOwner:
        owner = store.load_owner(self.server.engine, refresh_token.account_id)
        if owner is None or not owner.active:
            raise InvalidGrantError("The account that authorized this app is no longer active")
        if not may_open(self.server.engine, owner, refresh_token.patient_id):
            raise InvalidGrantError("The account may no longer open the card it chose")
        return owner

    def issue_token(self, user: ResourceOwner, refresh_token: TokenRecord) -> dict[str, Any]:
        server: MedcardAuthorizationServer = self.server
        if not store.claim_refresh(server.engine, refresh_token.key):
            revocation.forget(store.revoke_family(server.engine, refresh_token.family))
            raise InvalidGrantError("The refresh token was used twice; the grant is revoked")
        client: OAuthClient = self.request.client
        # The new refresh token keeps the grant's scope (RFC 6749 §6), narrowed only if
        # the client's registration has shrunk since; the access token may be narrower.
        held = sc.intersect(
            sc.parse(refresh_token.scope), sc.grant(None, client.scope, _holder_allowance(user))
        )
        wanted = self.request.payload.scope
        access = sc.intersect(sc.parse(wanted), held) if wanted else held
        return server.issue(
            self.request,
            owner=user,
            scopes=access,
            refresh_scopes=held,
            family=refresh_token.family,
            patient=refresh_token.patient_id,
        )

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        """Nothing to do: ``issue_token`` retired it before issuing the new one."""


class ClientCredentialsGrant(rfc6749_grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        server: MedcardAuthorizationServer = self.server
        granted = sc.grant(scope, self.request.client.scope, sc.SYSTEM)
        return server.issue(
            self.request, owner=None, scopes=granted, refresh_scopes=None, family=store.new_family()
        )


# -- revocation and introspection -------------------------------------------------


class _TokenLookup:
    """Find the token a client presents: an access-token JWT (by its jti) or a refresh token."""

    server: MedcardAuthorizationServer

    def lookup(self, request: MedcardRequest) -> TokenRecord | None:
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token' parameter")
        hint = request.form.get("token_type_hint")
        if hint and hint not in ("access_token", "refresh_token"):
            raise UnsupportedTokenTypeError()
        token_string = request.form["token"]
        server = self.server
        if token_string.count(".") == 2:
            try:
                claims = server.issuer.verify(token_string, (server.issuer_url(request),))
            except TokenError as exc:
                request.note.add(audit.DENIED, f"token presented failed verification: {exc}")
                return None
            record = store.find_token(server.engine, str(claims.get("jti", "")), "access")
            return None if record is None else replace(record, claims=claims)
        key = store.refresh_key(token_string)
        return None if key is None else store.find_token(server.engine, key, "refresh")


class Revocation(_TokenLookup, RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009.  Revoking a refresh token revokes its whole grant, access tokens included.
    An unknown, expired or forged token is "revoked" already: 200, as §2.2 asks."""

    CLIENT_AUTH_METHODS = _SECRET_OR_NONE

    def authenticate_token(self, request: MedcardRequest, client: OAuthClient) -> Any:
        request.note.who(client_id=client.client_id)
        token = self.lookup(request)
        if token is not None and not token.check_client(client):
            raise InvalidGrantError("The token was not issued to this client")
        return token

    def revoke_token(self, token: TokenRecord, request: MedcardRequest) -> None:
        engine = self.server.engine
        if token.kind == "refresh":
            jtis = store.revoke_family(engine, token.family)
            detail = "refresh token revoked with its grant"
        else:
            store.revoke_key(engine, token.key)
            jtis = [token.key]
            detail = "access token revoked"
        revocation.forget(jtis)
        request.note.add(
            audit.SUCCESS, f"{detail} (scope {token.scope})", patient_id=token.patient_id
        )


class Introspection(_TokenLookup, IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662.  A client may introspect the tokens issued to it; any other token reads
    as inactive, so nothing about other clients' tokens leaks."""

    CLIENT_AUTH_METHODS = _SECRET_OR_NONE

    def authenticate_token(self, request: MedcardRequest, client: OAuthClient) -> Any:
        request.note.who(client_id=client.client_id)
        token = self.lookup(request)
        return token if token is not None and token.check_client(client) else None

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        server: MedcardAuthorizationServer = self.server
        if token.claims is not None:
            c = token.claims
            out = {
                "active": True,
                "token_type": BEARER,
                "scope": c.get("scope", ""),
                "client_id": c.get("client_id", ""),
                "sub": c.get("sub", ""),
                "exp": c.get("exp"),
                "iat": c.get("iat"),
                "iss": c.get("iss"),
                "jti": c.get("jti"),
            }
            if c.get("aud"):
                out["aud"] = c["aud"]
            for claim in ("patient", "fhirUser", "organization"):
                if c.get(claim):
                    out[claim] = c[claim]
            return out
        owner = store.load_owner(server.engine, token.account_id)
        out = {
            "active": True,
            "token_type": "refresh_token",
            "scope": token.scope,
            "client_id": token.client_id,
            "sub": owner.subject if owner else "",
            "exp": token.expires // 1_000_000,
            "iat": token.issued // 1_000_000,
        }
        if token.patient_id:
            out["patient"] = token.patient_id
        return out


# -- the server ---------------------------------------------------------------------


class MedcardAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self,
        engine: Engine,
        issuer: TokenIssuer,
        *,
        access_lifetime_s: int = 3600,
        public_base_url: str = "",
    ) -> None:
        super().__init__(scopes_supported=None)  # scopes are narrowed, not rejected
        self.engine = engine
        self.issuer = issuer
        self.access_lifetime_s = access_lifetime_s
        self.public_base_url = public_base_url.rstrip("/")
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    # -- Authlib hooks ----------------------------------------------------------------
    def query_client(self, client_id: str) -> OAuthClient | None:
        return get_client(self.engine, client_id)

    def create_oauth2_request(self, request: Any) -> MedcardRequest:
        if isinstance(request, MedcardRequest):
            return request
        raise TypeError("pass a MedcardRequest")

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> HttpResponse:
        return HttpResponse(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals: auditing happens where the decisions are made."""

    def handle_error_response(self, request: MedcardRequest, error: OAuth2Error) -> HttpResponse:
        if isinstance(error, InvalidClientError):
            error.description = (
                "Client authentication failed (unknown client, wrong secret or method)"
            )
        request.note.add(audit.DENIED, f"{error.error}: {error.description}")
        return super().handle_error_response(request, error)  # type: ignore[no-any-return]

    def save_token(self, token: dict[str, Any], request: MedcardRequest) -> None:
        issued = request.issued
        assert issued is not None
        store.save_tokens(
            self.engine,
            client_id=request.client.client_id,
            account_id=issued.account_id,
            scope=issued.scope,
            patient_id=issued.patient_id,
            jti=issued.jti,
            access_exp=issued.exp,
            refresh_token=issued.refresh_token,
            refresh_scope=issued.refresh_scope,
        )

    # -- token minting ----------------------------------------------------------------
    def issue(
        self,
        request: MedcardRequest,
        *,
        owner: ResourceOwner | None,
        scopes: Scopes,
        refresh_scopes: Scopes | None,
        family: str,
        nonce: str = "",
        patient: str = "",
    ) -> dict[str, Any]:
        """Mint an access token (and maybe a refresh token) for an already narrowed scope.

        ``patient``: the card picked at authorization (already checked against the
        owner's cards); the owner's own card when none was picked.
        """
        client: OAuthClient = request.client
        requested = request.payload.scope
        if not scopes.scopes:
            raise InvalidScopeError("None of the requested resource scopes can be granted")
        scope = str(scopes)
        patient = "" if owner is None or owner.is_staff else patient or owner.patient_id
        jti = f"{family}.{secrets.token_hex(12)}"
        extra: dict[str, Any] = {"jti": jti, **self._role_claims(client, owner)}
        # SMART's patient/ scopes mean the one patient in context: a parent's app token is
        # for the card they picked, never for every card they may open (issue 22).
        extra.pop("patients", None)
        if client.organization_ref:
            extra["organization"] = client.organization_ref
        if owner and owner.fhir_ref and ("fhirUser" in scopes.other or owner.is_staff):
            # Staff tokens always name the person (Practitioner/...) the gate acts for.
            extra["fhirUser"] = owner.fhir_ref
        # Issuer: this server's public base URL, as OpenID Connect discovery says; the
        # audience: its FHIR base, where the token is meant to be used (issue 22).
        extra["aud"] = self.fhir_bases(request)[0]
        access = self._minter(request).mint(
            owner.subject if owner else f"Client/{client.client_id}",
            scope,
            patient=patient or None,
            client_id=client.client_id,
            lifetime=self.access_lifetime_s,
            extra=extra,
        )
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": BEARER,
            "expires_in": self.access_lifetime_s,
            "scope": scope,
        }
        if patient:
            body["patient"] = patient
        refresh = None
        if (
            refresh_scopes is not None
            and "offline_access" in refresh_scopes.other
            and client.check_grant_type("refresh_token")
        ):
            refresh = store.new_refresh_token(family)
            body["refresh_token"] = refresh
        if owner and "openid" in scopes.other:
            body["id_token"] = self._id_token(request, owner, client, scopes, nonce)
        exp = int(revocation.unverified_claims(access)["exp"])  # we just signed it
        request.issued = _Issued(
            jti=jti,
            exp=exp,
            scope=scope,
            refresh_token=refresh,
            refresh_scope=str(refresh_scopes) if refresh_scopes is not None else scope,
            patient_id=patient,
            account_id=owner.account_id if owner else "",
        )
        grant_type = request.payload.grant_type
        not_granted = sc.narrowed(requested, scopes) if requested else []
        detail = f"{grant_type}: issued {scope}" + (" with refresh token" if refresh else "")
        if not_granted:
            detail += f"; not granted: {' '.join(not_granted)}"
        request.note.add(audit.SUCCESS, detail, patient_id=patient)
        return body

    def _role_claims(self, client: OAuthClient, owner: ResourceOwner | None) -> dict[str, Any]:
        """The role the access gate applies: scopes only ever narrow what it allows.

        A patient app acts as its patient.  An app a member of staff authorized acts with
        their role, and their organisations (a practitioner's from their active
        PractitionerRoles, read now, so a change of job shows at the next token; others'
        from their account).  A system client registered for an
        organisation is that organisation's integration (a laboratory or imaging
        centre: role ``lab``, limited to referrals addressed to it); one without an
        organisation is a trusted back-office system (role ``system``).
        """
        if owner is not None:
            if owner.is_staff:
                claims = token_claims(
                    self.engine, Role(owner.role), owner.fhir_ref, owner.organization_ref
                )
            else:
                claims = token_claims(self.engine, Role.PATIENT, owner.fhir_ref)
            claims["account"] = owner.account_id
            claims.update(epochs.mint_claim(self.engine, owner.account_id))  # issue 14
            return claims
        role = Role.LAB if client.organization_ref else Role.SYSTEM
        return token_claims(self.engine, role, "", client.organization_ref)

    def _id_token(
        self,
        request: MedcardRequest,
        owner: ResourceOwner,
        client: OAuthClient,
        scopes: Scopes,
        nonce: str,
    ) -> str:
        """An OpenID Connect ID token naming the user (and, with fhirUser, their resource)."""
        extra: dict[str, Any] = {"aud": client.client_id}
        if nonce:
            extra["nonce"] = nonce
        if "fhirUser" in scopes.other and owner.fhir_ref:
            extra["fhirUser"] = f"{self.fhir_bases(request)[0]}/{owner.fhir_ref}"
        return self._minter(request).mint(
            owner.account_id,
            "",
            client_id=client.client_id,
            lifetime=self.access_lifetime_s,
            extra=extra,
        )

    def issuer_url(self, request: MedcardRequest) -> str:
        """The OpenID issuer: the configured public base URL, else the one asked for."""
        return self.fhir_bases(request)[0].removesuffix("/fhir")

    def _minter(self, request: MedcardRequest) -> TokenIssuer:
        return replace(self.issuer, issuer=self.issuer_url(request))

    def fhir_bases(self, request: MedcardRequest) -> list[str]:
        """This server's FHIR base URL(s): the configured one, else the one asked for."""
        bases = []
        if self.public_base_url:
            bases.append(self.public_base_url + "/fhir")
        parts = urlsplit(request.uri)
        bases.append(f"{parts.scheme}://{parts.netloc}/fhir")
        return bases

    # -- entry points for the web layer ---------------------------------------------
    def token(self, req: HttpRequest) -> HttpResponse:
        note = audit.Note(audit.TOKEN)
        request = MedcardRequest(req, params_from_query=False, note=note)
        note.who(client_id=_claimed_client_id(request))
        try:
            response: HttpResponse = self.create_token_response(request)
        finally:
            note.flush(self.engine)
        return response

    def revoke(self, req: HttpRequest) -> HttpResponse:
        return self._endpoint("revocation", audit.REVOKE, req)

    def introspect(self, req: HttpRequest) -> HttpResponse:
        return self._endpoint("introspection", audit.INTROSPECT, req)

    def _endpoint(self, name: str, interaction: str, req: HttpRequest) -> HttpResponse:
        note = audit.Note(interaction)
        request = MedcardRequest(req, params_from_query=False, note=note)
        note.who(client_id=_claimed_client_id(request))
        # Authlib's endpoint objects are shared between threads: per-request state
        # (the audit note included) travels on the request, never on the endpoint.
        endpoint = self._endpoints[name][0]
        try:
            try:
                status, body, headers = endpoint(request)
                response = HttpResponse(status, body, list(headers))
            except OAuth2Error as error:
                response = self.handle_error_response(request, error)
        finally:
            note.flush(self.engine)
        return response

    def begin_authorization(
        self, req: HttpRequest, owner: ResourceOwner
    ) -> Consent | HttpResponse | Problem:
        """Validate an authorization request for the consent screen."""
        note = audit.Note(audit.AUTHORIZE, actor=owner.subject, patient_id=owner.patient_id)
        request = MedcardRequest(req, params_from_query=True, note=note)
        try:
            grant = self.get_consent_grant(request, end_user=owner)
        except OAuth2Error as error:
            return self._authorization_error(request, error)
        finally:
            note.flush(self.engine)
        granted = sc.parse(request.scope)
        cards = patient_cards(self.engine, owner)
        return Consent(
            client=request.client,
            owner=owner,
            scopes=granted,
            not_granted=sc.refused(request.payload.scope, granted),
            redirect_uri=grant.redirect_uri,
            cards=cards if len(cards) > 1 else [],
        )

    def finish_authorization(
        self, req: HttpRequest, owner: ResourceOwner, *, allow: bool, patient: str = ""
    ) -> HttpResponse | Problem:
        """The patient chose Allow or Deny (and, with dependants, whose card): redirect
        back to the app with a code or an error."""
        note = audit.Note(audit.AUTHORIZE, actor=owner.subject, patient_id=owner.patient_id)
        request = MedcardRequest(req, params_from_query=True, note=note)
        try:
            try:
                grant = self.get_consent_grant(request, end_user=owner)
            except OAuth2Error as error:
                return self._authorization_error(request, error)
            if patient and not owner.is_staff:
                if not may_open(self.engine, owner, patient):
                    note.add(audit.DENIED, f"picked a card the account may not open: {patient}")
                    return Problem(400, "invalid_request", "This card is not one you may open")
                request.patient_id = patient
                note.who(patient_id=patient)
            if not allow:
                note.add(
                    audit.DENIED, f"{owner.role} denied {request.client.name!r}: {request.scope}"
                )
                denied = AccessDeniedError(
                    "The patient did not allow access"
                    if not owner.is_staff
                    else "The user did not allow access",
                    redirect_uri=grant.redirect_uri,
                    state=request.payload.state,
                )
                return HttpResponse(*denied())
            response: HttpResponse = self.create_authorization_response(
                request, grant_user=owner, grant=grant
            )
            if response.status == 302 and "code=" in (response.location or ""):
                detail = f"{owner.role} allowed {request.client.name!r}: {request.scope}"
                if request.patient_id and request.patient_id != owner.patient_id:
                    detail += f" for Patient/{request.patient_id}"
                lost = sc.narrowed(request.payload.scope, sc.parse(request.scope))
                if lost:
                    detail += f"; not granted: {' '.join(lost)}"
                note.add(audit.SUCCESS, detail)
            return response
        finally:
            note.flush(self.engine)

    def _authorization_error(
        self, request: MedcardRequest, error: OAuth2Error
    ) -> HttpResponse | Problem:
        request.note.add(audit.DENIED, f"{error.error}: {error.description}")
        if error.redirect_uri:
            # Only ever a redirect URI the client registered (Authlib sets it after the check).
            return HttpResponse(*error())
        return Problem(400, str(error.error), str(error.description or ""))


def _authorizer_allowance(owner: ResourceOwner | None, redirect_uri: str) -> sc.Allowance:
    """What the signed-in person may grant an app, or ``access_denied`` saying why not."""
    why = ""
    allowance = sc.allowance_for(owner.role) if owner is not None else None
    if owner is None or not owner.active:
        why = "The account is not active"
    elif allowance is None:
        why = "This account cannot authorize apps"
    elif not owner.is_staff and not owner.patient_id:
        why = "Only a patient account linked to a card can authorize apps"
    elif owner.is_staff and not owner.mfa_ok:
        # Staff pages need the second factor; so does handing an app a staff token.
        why = "Staff authorize apps only after signing in with a one-time code"
    if why or allowance is None:
        raise AccessDeniedError(why, redirect_uri=redirect_uri)
    return allowance


def patient_cards(engine: Engine, owner: ResourceOwner) -> list[str]:
    """The cards a patient account may open an app to: their own, then their dependants'
    (children under 15, wards: access/subjects.py).  Nothing for staff."""
    if owner.is_staff or not owner.patient_id:
        return []
    return [owner.patient_id, *dependants(engine, owner.patient_id)]


def may_open(engine: Engine, owner: ResourceOwner, patient_id: str) -> bool:
    """Whether a grant for ``patient_id`` (empty: no patient) suits this account now."""
    if patient_id == owner.patient_id:
        return True
    return bool(patient_id) and patient_id in patient_cards(engine, owner)


def _holder_allowance(owner: ResourceOwner) -> sc.Allowance:
    """What the account a grant belongs to may still hold (its role may have changed)."""
    allowance = sc.allowance_for(owner.role)
    if allowance is None:
        raise InvalidGrantError("The account that authorized this app can no longer hold tokens")
    return allowance


def _claimed_client_id(request: MedcardRequest) -> str:
    """Who the caller says it is, for the audit trail of a refusal (authenticated or not)."""
    basic_id, _ = extract_basic_authorization(request.headers)
    cid = basic_id or request.form.get("client_id") or ""
    return str(cid)[:64]
