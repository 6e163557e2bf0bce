"""National SSO: "Войти через Госуслуги"-style OpenID Connect login, one provider per region.

The flow is the authorization code flow of OpenID Connect Core 1.0 §3.1 with PKCE
(RFC 7636, S256):

1. :meth:`OidcProvider.begin` reads the provider's discovery document
   (``{issuer}/.well-known/openid-configuration``), makes a :class:`PendingLogin`
   (state, nonce, PKCE verifier) and the authorization URL.  The pending login is
   sealed by :class:`CookieSeal` into a short-lived signed cookie: it lives only in
   the browser that started the login, so a callback is accepted only from it.
2. The callback's ``state`` must equal the cookie's and is accepted once by all
   workers together (:class:`ConsumedStates`, in the shared store; the cookie is also
   cleared).  :meth:`OidcProvider.finish`
   exchanges the code with Authlib's OAuth 2.0 client (PKCE verifier, client
   authentication) and validates the ID token (§3.1.3.7: signature against the
   provider's JWKS, ``iss``, ``aud``/``azp``, ``exp``, ``iat``, ``nonce``).
3. The SNILS claim (ID token, else userinfo with the same ``sub``) is normalised and
   looked up as a Patient identifier through the FHIR core (:func:`find_patients`), so
   the lookup passes the same gate and audit as every other read.  Exactly one card
   signs the person in with a patient account ``sso:<region>:<sub>``
   (:func:`patient_account`); none or several give a page saying what to do.

Nothing here imports the web framework; ``web/sso.py`` is the thin adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import redis as _redis
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from medcard import clock
from medcard.access.context import AccessContext
from medcard.access.smart import Scopes
from medcard.audit.recorder import AuditBuffer
from medcard.auth import accounts
from medcard.auth.accounts import Account, Role
from medcard.config import SsoProvider
from medcard.db.tables import sso_states
from medcard.fhir import local
from medcard.identifiers import SNILS_SYSTEM, IdentifierError, format_snils, validate_snils

try:  # the HTTP library Authlib's httpx client is built on: httpx2 when installed
    import httpx2 as _http
except ImportError:  # pragma: no cover - Authlib then falls back to httpx
    import httpx as _http  # type: ignore[no-redef]

INTERACTION = "sso-login"  # audit_log.interaction of every SSO sign-in attempt
_STATE_SALT = "medcard.sso.state.v1"
_OUTCOME_SALT = "medcard.sso.outcome.v1"
# Asymmetric signatures only: "none" and HMAC (keyed with the client secret) are refused.
ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
CLOCK_LEEWAY_SECONDS = 60
METADATA_TTL_SECONDS = 3600
JWKS_REFRESH_MIN_SECONDS = 30  # an unknown "kid" refetches the keys at most this often
_MAX_SUB_IN_LOGIN = 200  # accounts.login is 255 characters


class Failure(StrEnum):
    """Why an SSO login did not sign anyone in; each has its own page (``web/sso.py``)."""

    UNKNOWN_REGION = "unknown_region"
    BAD_STATE = "bad_state"  # no, forged, expired or mismatched state: not this browser's login
    REPLAYED = "replayed"  # this state was already used
    ACCESS_DENIED = "access_denied"  # the person declined at the provider
    PROVIDER_ERROR = "provider_error"  # an error or malformed response from the provider
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    CODE_REFUSED = "code_refused"  # token endpoint refused the code (expired, reused, PKCE)
    ID_TOKEN_INVALID = "id_token_invalid"  # noqa: S105 - a failure name, not a secret
    NO_SNILS = "no_snils"
    BAD_SNILS = "bad_snils"
    ACCOUNT_INACTIVE = "account_inactive"
    # The person was identified, but the SNILS leads to no card, or to several.
    NO_CARD = "no_card"
    DUPLICATE_CARDS = "duplicate_cards"


# Failures on the provider's side, worth an operator's attention (they are also logged).
PROVIDER_FAILURES = frozenset(
    {
        Failure.PROVIDER_ERROR,
        Failure.PROVIDER_UNAVAILABLE,
        Failure.ID_TOKEN_INVALID,
        Failure.CODE_REFUSED,
    }
)

# Refusals on security grounds are audited as denials; the rest as failures.
DENIALS = frozenset(
    {
        Failure.BAD_STATE,
        Failure.REPLAYED,
        Failure.CODE_REFUSED,
        Failure.ID_TOKEN_INVALID,
        Failure.ACCOUNT_INACTIVE,
    }
)


class SsoError(Exception):
    """An SSO login failed; ``failure`` picks the page, ``detail`` goes to the audit log."""

    def __init__(self, failure: Failure, detail: str = "", *, sub: str = "") -> None:
        super().__init__(f"{failure}: {detail}" if detail else str(failure))
        self.failure = failure
        self.detail = detail
        self.sub = sub


# -- the login in flight: sealed into a cookie, accepted once ------------------------


@dataclass(frozen=True)
class PendingLogin:
    region: str
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str


def derive_state_secret(signing_key: ECKey) -> bytes:
    """The key that signs state cookies, derived from the server's own signing key, so
    every worker sharing the data directory agrees without one more secret to manage."""
    d = signing_key.as_dict(private=True).get("d")
    if not isinstance(d, str) or not d:
        raise ValueError("the signing key has no private part")
    return hmac.new(d.encode(), b"medcard sso state cookie v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class Outcome:
    """What the result page after the callback shows (kept in a signed cookie, so that
    reloading it or switching its language does not repeat the callback)."""

    region: str
    failure: Failure
    snils_masked: str = ""


class CookieSeal:
    """Signs what the SSO pages keep in cookies and opens it again (itsdangerous).

    The login cookie holds the state, nonce and PKCE verifier; it is HttpOnly and
    scoped to ``/auth/sso/`` by the web layer.  Signing stops a browser from choosing
    its own state, nonce or redirect URI; the timestamp bounds how long a login may
    take.
    """

    def __init__(self, secret: bytes, max_age_seconds: int) -> None:
        self._login = URLSafeTimedSerializer(secret, salt=_STATE_SALT)
        self._outcome = URLSafeTimedSerializer(secret, salt=_OUTCOME_SALT)
        self.max_age_seconds = max_age_seconds

    def seal_login(self, pending: PendingLogin) -> str:
        return self._login.dumps(asdict(pending))

    def open_login(self, value: str | None) -> PendingLogin:
        if not value:
            raise SsoError(Failure.BAD_STATE, "no state cookie in this browser")
        try:
            data = self._login.loads(value, max_age=self.max_age_seconds)
        except SignatureExpired:
            raise SsoError(Failure.BAD_STATE, "state cookie expired") from None
        except BadSignature:
            raise SsoError(Failure.BAD_STATE, "state cookie signature invalid") from None
        try:
            return PendingLogin(**{k: str(data[k]) for k in PendingLogin.__dataclass_fields__})
        except (KeyError, TypeError):
            raise SsoError(Failure.BAD_STATE, "state cookie malformed") from None

    def seal_outcome(self, outcome: Outcome) -> str:
        return self._outcome.dumps([outcome.region, outcome.failure.value, outcome.snils_masked])

    def open_outcome(self, value: str | None) -> Outcome | None:
        if not value:
            return None
        try:
            region, failure, snils = self._outcome.loads(value, max_age=self.max_age_seconds)
            return Outcome(str(region), Failure(failure), str(snils))
        except (BadSignature, ValueError, TypeError):
            return None


class ConsumedStates:
    """States already presented at a callback; a second use is refused.

    The state cookie is cleared on first use as well, and the provider refuses a
    reused code; this also refuses a replay that brings the old cookie along.  The
    used states live in the store every worker shares (issue 14: a callback may land
    on any worker, and a replay on another one): Redis when configured (``SET NX``
    with an expiry), else the ``sso_states`` table, whose primary key makes the first
    insert win.  Only a hash of the state is kept, and only until its cookie expires.
    """

    def __init__(self, engine: Engine, ttl_seconds: int, redis_url: str = "") -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._redis = _redis.Redis.from_url(redis_url) if redis_url else None

    def consume(self, state: str) -> bool:
        """True the first time a state is seen by any worker, False afterwards."""
        key = hashlib.sha256(state.encode()).hexdigest()
        if self._redis is not None:
            return bool(self._redis.set(f"medcard:sso-state:{key}", b"1", nx=True, ex=self._ttl))
        now = clock.now_micros()
        try:
            with self._engine.begin() as conn:
                conn.execute(delete(sso_states).where(sso_states.c.expires < now))
                conn.execute(
                    insert(sso_states).values(state_hash=key, expires=now + self._ttl * 1_000_000)
                )
        except IntegrityError:
            return False
        return True


def state_matches(pending: PendingLogin, region: str, state: str | None) -> None:
    """Raise unless the callback's state and region are those of this browser's login."""
    if pending.region != region:
        raise SsoError(Failure.BAD_STATE, f"state cookie is for region {pending.region}")
    if not state or not hmac.compare_digest(pending.state.encode(), state.encode()):
        raise SsoError(Failure.BAD_STATE, "state does not match this browser's login")


# -- the provider ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    id_token_algorithms: tuple[str, ...]
    iss_in_response: bool = False  # RFC 9207 authorization_response_iss_parameter_supported


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    region: str
    sub: str
    snils: str  # 11 digits, control number checked
    display_name: str = ""

    @property
    def login(self) -> str:
        """The account login: ``sso:<region>:<sub>`` (a very long ``sub`` is hashed)."""
        sub = self.sub
        if len(sub) > _MAX_SUB_IN_LOGIN:
            sub = "sha256-" + hashlib.sha256(sub.encode()).hexdigest()
        return f"sso:{self.region}:{sub}"


@dataclass
class _Cached:
    value: Any
    fetched: float


@dataclass
class OidcProvider:
    """One region's identity provider: discovery and keys cached, logins begun and finished."""

    region: str
    config: SsoProvider
    timeout_seconds: float = 10.0
    _metadata: _Cached | None = field(default=None, repr=False)
    _keys: _Cached | None = field(default=None, repr=False)

    def _client(self) -> AsyncOAuth2Client:
        secret = self.config.client_secret
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=secret.get_secret_value() if secret else None,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=self.config.scope,
            code_challenge_method="S256",
            timeout=self.timeout_seconds,
            follow_redirects=False,
        )

    # discovery (OpenID Connect Discovery 1.0 §4) ------------------------------------

    async def metadata(self, http: AsyncOAuth2Client) -> ProviderMetadata:
        cached = self._metadata
        if cached and time.monotonic() - cached.fetched < METADATA_TTL_SECONDS:
            return cached.value  # type: ignore[no-any-return]
        # Concurrent first logins may each fetch it; the last one is kept.  No lock: an
        # asyncio lock is bound to one event loop and the app may be served by several.
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = await _get_json(http, url, "discovery document")
        meta = _parse_metadata(doc, self.config.issuer)
        self._metadata = _Cached(meta, time.monotonic())
        return meta

    async def _key_set(
        self, http: AsyncOAuth2Client, meta: ProviderMetadata, *, refresh: bool
    ) -> KeySet:
        cached = self._keys
        if cached and not refresh:
            return cached.value  # type: ignore[no-any-return]
        if cached and refresh and time.monotonic() - cached.fetched < JWKS_REFRESH_MIN_SECONDS:
            return cached.value  # type: ignore[no-any-return]
        doc = await _get_json(http, meta.jwks_uri, "JWKS")
        try:
            keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise SsoError(Failure.PROVIDER_ERROR, f"JWKS unreadable: {exc}") from None
        self._keys = _Cached(keys, time.monotonic())
        return keys

    # the login ---------------------------------------------------------------------

    async def begin(self, redirect_uri: str) -> tuple[str, PendingLogin]:
        """The provider's authorization URL and the pending login to seal into the cookie."""
        pending = PendingLogin(
            region=self.region,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),  # 86 characters: RFC 7636 allows 43-128
            redirect_uri=redirect_uri,
        )
        try:
            async with self._client() as http:
                meta = await self.metadata(http)
                url, _ = http.create_authorization_url(
                    meta.authorization_endpoint,
                    state=pending.state,
                    code_verifier=pending.code_verifier,
                    nonce=pending.nonce,
                    redirect_uri=redirect_uri,
                )
        except _http.HTTPError as exc:
            raise SsoError(Failure.PROVIDER_UNAVAILABLE, f"discovery: {exc!r}") from None
        return str(url), pending

    async def finish(self, pending: PendingLogin, params: Mapping[str, str]) -> Identity:
        """Turn the callback's parameters into a validated :class:`Identity`.

        The caller has checked the state (:func:`state_matches`) and consumed it.
        """
        if "error" in params:
            error = params["error"][:64]
            description = params.get("error_description", "")[:300]
            failure = Failure.ACCESS_DENIED if error == "access_denied" else Failure.PROVIDER_ERROR
            raise SsoError(failure, f"{error}: {description}".rstrip(": "))
        code = params.get("code", "")
        if not code:
            raise SsoError(Failure.PROVIDER_ERROR, "no code in the callback")
        try:
            async with self._client() as http:
                meta = await self.metadata(http)
                _check_response_issuer(params.get("iss"), meta)
                try:
                    token = await http.fetch_token(
                        meta.token_endpoint,
                        grant_type="authorization_code",
                        code=code,
                        code_verifier=pending.code_verifier,
                        redirect_uri=pending.redirect_uri,
                    )
                except OAuthError as exc:
                    raise SsoError(
                        Failure.CODE_REFUSED, f"{exc.error}: {exc.description or ''}"[:300]
                    ) from None
                except (ValueError, TypeError) as exc:  # a token response that is not JSON
                    raise SsoError(Failure.PROVIDER_ERROR, f"token response: {exc!r}") from None
                raw = token.get("id_token")
                if not isinstance(raw, str) or not raw:
                    raise SsoError(Failure.ID_TOKEN_INVALID, "no id_token in the token response")
                claims = await self._validated_claims(http, meta, raw, pending.nonce)
                sub = str(claims["sub"])
                if self.config.snils_claim not in claims and meta.userinfo_endpoint:
                    claims = {**await self._userinfo(http, meta, sub), **claims}
        except _http.HTTPError as exc:
            raise SsoError(Failure.PROVIDER_UNAVAILABLE, repr(exc)) from None
        return Identity(
            region=self.region,
            sub=sub,
            snils=_snils_from(claims.get(self.config.snils_claim), sub),
            display_name=_display_name(claims),
        )

    async def _validated_claims(
        self, http: AsyncOAuth2Client, meta: ProviderMetadata, raw: str, nonce: str
    ) -> dict[str, Any]:
        """OpenID Connect Core 1.0 §3.1.3.7 (ID Token Validation)."""
        algorithms = [a for a in meta.id_token_algorithms if a in ID_TOKEN_ALGORITHMS]
        if not algorithms:
            raise SsoError(Failure.ID_TOKEN_INVALID, "no acceptable signing algorithm")
        keys = await self._key_set(http, meta, refresh=False)
        try:
            decoded = jwt.decode(raw, keys, algorithms=algorithms)
        except JoseError:
            # The provider may have rotated its keys: fetch them again, once.
            keys = await self._key_set(http, meta, refresh=True)
            try:
                decoded = jwt.decode(raw, keys, algorithms=algorithms)
            except (JoseError, ValueError) as exc:
                raise SsoError(Failure.ID_TOKEN_INVALID, f"signature: {exc!r}") from None
        except ValueError as exc:
            raise SsoError(Failure.ID_TOKEN_INVALID, f"malformed: {exc!r}") from None
        claims = dict(decoded.claims)
        try:
            jwt.JWTClaimsRegistry(
                leeway=CLOCK_LEEWAY_SECONDS,
                iss={"essential": True, "value": self.config.issuer},
                sub={"essential": True},
                aud={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except JoseError as exc:
            raise SsoError(Failure.ID_TOKEN_INVALID, f"claims: {exc!r}") from None
        aud = claims["aud"]
        audiences = [aud] if isinstance(aud, str) else list(aud)
        if self.config.client_id not in audiences:
            raise SsoError(Failure.ID_TOKEN_INVALID, "aud does not name this client")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise SsoError(Failure.ID_TOKEN_INVALID, "azp does not name this client")
        if not str(claims["sub"]):
            raise SsoError(Failure.ID_TOKEN_INVALID, "empty sub")
        return claims

    async def _userinfo(
        self, http: AsyncOAuth2Client, meta: ProviderMetadata, sub: str
    ) -> dict[str, Any]:
        """Claims from the userinfo endpoint, whose ``sub`` must be the ID token's (§5.3.2)."""
        assert meta.userinfo_endpoint is not None
        resp = await http.request("GET", meta.userinfo_endpoint)
        if resp.status_code != 200:
            raise SsoError(Failure.PROVIDER_ERROR, f"userinfo answered {resp.status_code}")
        try:
            info = resp.json()
        except ValueError:
            raise SsoError(Failure.PROVIDER_ERROR, "userinfo is not JSON") from None
        if not isinstance(info, dict) or info.get("sub") != sub:
            raise SsoError(Failure.ID_TOKEN_INVALID, "userinfo is about someone else")
        return info


def _check_response_issuer(iss: str | None, meta: ProviderMetadata) -> None:
    """RFC 9207 (mix-up defence): the response must come from the issuer we asked, and
    carry ``iss`` when the provider says it always does."""
    if iss is None and meta.iss_in_response:
        raise SsoError(Failure.PROVIDER_ERROR, "the response does not name its issuer")
    if iss is not None and iss != meta.issuer:
        raise SsoError(Failure.PROVIDER_ERROR, f"response from issuer {iss[:200]!r}")


async def _get_json(http: AsyncOAuth2Client, url: str, what: str) -> dict[str, Any]:
    resp = await http.request("GET", url, withhold_token=True)
    if resp.status_code != 200:
        raise SsoError(Failure.PROVIDER_UNAVAILABLE, f"{what} answered {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError:
        raise SsoError(Failure.PROVIDER_ERROR, f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise SsoError(Failure.PROVIDER_ERROR, f"{what} is not a JSON object")
    return doc


def _parse_metadata(doc: Mapping[str, Any], issuer: str) -> ProviderMetadata:
    # Discovery §4.3: the document's issuer must be exactly the one configured.
    if doc.get("issuer") != issuer:
        raise SsoError(Failure.PROVIDER_ERROR, f"discovery names issuer {doc.get('issuer')!r}")
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(name)
        if not isinstance(value, str) or not _https_or_loopback(value):
            raise SsoError(Failure.PROVIDER_ERROR, f"discovery: bad {name} {value!r}")
        endpoints[name] = value
    userinfo = doc.get("userinfo_endpoint")
    if not isinstance(userinfo, str) or not _https_or_loopback(userinfo):
        userinfo = None
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SsoError(Failure.PROVIDER_ERROR, "the provider does not support PKCE S256")
    algs = doc.get("id_token_signing_alg_values_supported")
    algorithms = tuple(a for a in algs if isinstance(a, str)) if isinstance(algs, list) else ()
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        userinfo_endpoint=userinfo,
        id_token_algorithms=algorithms or ("RS256",),  # Discovery: RS256 MUST be supported
        iss_in_response=doc.get("authorization_response_iss_parameter_supported") is True,
    )


def _https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in {"127.0.0.1", "::1", "localhost"}
    )


def _snils_from(value: object, sub: str) -> str:
    if value is None or value == "":
        raise SsoError(Failure.NO_SNILS, "the provider released no SNILS", sub=sub)
    if isinstance(value, int):
        value = f"{value:011d}"
    if not isinstance(value, str):
        raise SsoError(Failure.BAD_SNILS, f"SNILS claim of type {type(value).__name__}", sub=sub)
    try:
        return validate_snils(value)
    except IdentifierError:
        raise SsoError(
            Failure.BAD_SNILS, f"SNILS {mask_snils(value)} is invalid", sub=sub
        ) from None


def _display_name(claims: Mapping[str, Any]) -> str:
    parts = [claims.get(k) for k in ("family_name", "given_name", "middle_name")]
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    if not name and isinstance(claims.get("name"), str):
        name = claims["name"].strip()
    return name[:255]


def mask_snils(snils: str) -> str:
    """``***-***-789 01``: enough for a person to recognise their number, and for a log."""
    digits = "".join(c for c in snils if c.isdigit())
    if len(digits) != 11:
        return "***"
    return "***-***-" + format_snils(digits)[8:]


# -- the card and the account ---------------------------------------------------------

SSO_ACTOR = "system:sso"


def find_patients(engine: Engine, snils: str) -> list[str]:
    """Ids of the Patients carrying this SNILS, through the FHIR core (gate and audit).

    Both spellings are searched: 11 digits and the printed ``123-456-789 01``.
    Records merged into another (``Patient.link`` of type ``replaced-by``) are not
    candidates: after the registry merges duplicates, the survivor alone matches.
    """
    identifier = f"{SNILS_SYSTEM}|{snils},{SNILS_SYSTEM}|{format_snils(snils)}"
    query = urlencode({"identifier": identifier, "_count": "20"})
    resp = local.call(engine, AccessContext.system(SSO_ACTOR), "GET", f"Patient?{query}")
    if resp.status != 200:
        raise RuntimeError(f"Patient search by SNILS answered {resp.status}")
    bundle = orjson.loads(resp.body_bytes())  # entries may hold raw JSON fragments
    ids = []
    for entry in bundle.get("entry") or []:
        if (entry.get("search") or {}).get("mode", "match") != "match":
            continue
        patient = entry.get("resource") or {}
        if any(link.get("type") == "replaced-by" for link in patient.get("link") or []):
            continue
        ids.append(str(patient["id"]))
    return sorted(set(ids))


def patient_account(engine: Engine, identity: Identity, patient_id: str) -> Account:
    """The patient account of this SSO identity, created on first sign-in.

    It acts as ``Patient/<patient_id>``; when the card matched for the SNILS has changed
    (the registry merged records) the link follows it.  Its password hash is unusable,
    so it can only be entered through the provider.
    """
    ref = f"Patient/{patient_id}"
    account = accounts.get_by_external_login(engine, identity.login)
    if account is None:
        account = accounts.create_external_account(
            engine,
            identity.login,
            Role.PATIENT,
            display_name=identity.display_name,
            fhir_ref=ref,
            region=identity.region,
        )
    if not account.active or account.role is not Role.PATIENT:
        raise SsoError(Failure.ACCOUNT_INACTIVE, f"account {account.id}", sub=identity.sub)
    if account.fhir_ref != ref:
        account = accounts.link(engine, account.id, ref)
    return account


# -- audit ----------------------------------------------------------------------------


def record(
    engine: Engine,
    region: str,
    outcome: str,
    detail: str,
    *,
    actor: str = "anonymous",
    patient_id: str = "",
) -> None:
    """One audit entry for one SSO sign-in attempt, appended on its own."""
    buffer = AuditBuffer(AccessContext(actor, Scopes.parse(""), client_id=f"sso:{region}"))
    buffer.add(
        INTERACTION,
        "Patient" if patient_id else "",
        patient_id,
        patient_id,
        outcome=outcome,
        detail=detail,
    )
    buffer.flush_separately(engine)
