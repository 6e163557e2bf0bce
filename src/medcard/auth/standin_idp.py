"""A stand-in national identity provider for the demo: «Тестовый поставщик (заглушка)».

It is a real OpenID Connect provider built on Authlib's authorization server
(``authlib.oauth2`` with ``authlib.oidc.core``): authorization code flow with PKCE
(S256, required for every client), RS256-signed ID tokens, a discovery document, a
JWKS and a userinfo endpoint.  medcard's own SSO client (``auth/sso.py``) talks to it
over HTTP exactly as to a real provider, through an ordinary ``MEDCARD_SSO_PROVIDERS``
entry that the app fills in when ``MEDCARD_STANDIN_IDP`` is on (``serve --demo``).

It is NOT Gosuslugi/ESIA and never authenticates anyone for real: a person is picked
from a list and the published demo password is enough.  Its persons are the demo's
patient accounts (their SNILS, names and birth dates are read from the demo cards
through the FHIR core, audited as ``system:standin-idp``) and a few people with no card
in the system, to show what a newcomer meets.

State lives in this process (codes for 10 minutes, access tokens for an hour): the
demo runs one worker.  The signing key is kept in the data directory, so ID tokens
stay verifiable across restarts; the client secret is derived from it.

Nothing here imports the web framework; ``web/standin_idp.py`` is the thin adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.auth import accounts
from medcard.auth.oauth.server import FormPayload
from medcard.fhir import local
from medcard.identifiers import SNILS_SYSTEM, IdentifierError, make_snils, validate_snils
from medcard.regions.config import get_region

PATH = "/standin-idp"  # where the app serves it
CLIENT_ID = "medcard-demo"
NAME = "Госуслуги"  # the button reads «Войти через Госуслуги», as with the real one
LABEL_RU = "Тестовый поставщик (заглушка) — не Госуслуги"
LABEL_EN = "Test identity provider (stand-in) — not Gosuslugi"
DEMO_PERSON_PASSWORD = "medcard-demo"  # noqa: S105 - the published demo password
ACTOR = "system:standin-idp"
CODE_SECONDS = 600
TOKEN_SECONDS = 3600
PERSONS_SECONDS = 600
SCOPES = ("openid", "profile", "snils", "birthdate")
_CALLBACK_PATH = re.compile(r"^/auth/sso/[A-Za-z0-9]{1,16}/callback$")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# The demo accounts whose cards give the stand-in its persons (demo/accounts.py).
DEMO_PATIENT_LOGINS = ("patient@medcard.example", "parent@medcard.example")
PETERSBURG = "78"  # and one person of a St Petersburg card, whose region lacks a feature


# -- persons ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    sub: str
    family_name: str
    given_name: str
    middle_name: str
    birthdate: str
    snils: str  # 11 digits
    note_ru: str
    note_en: str

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.family_name, self.given_name, self.middle_name) if p)


def subject_of(snils: str) -> str:
    """A stable, opaque ``sub`` per person (as ESIA's numeric oid is)."""
    return "standin-" + hashlib.sha256(f"medcard standin {snils}".encode()).hexdigest()[:20]


# People with no card in the system (SNILS of a made-up series, control number valid).
NEWCOMERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Новикова", "Алина", "Сергеевна", "1995-07-21", make_snils("900100201")),
    ("Фёдоров", "Константин", "Ильич", "1979-11-02", make_snils("900100302")),
)


def _person_from_patient(patient: dict[str, Any], login: str) -> Person | None:
    snils = next(
        (i.get("value") for i in patient.get("identifier", []) if i.get("system") == SNILS_SYSTEM),
        None,
    )
    if not isinstance(snils, str):
        return None
    try:
        snils = validate_snils(snils)
    except IdentifierError:
        return None
    name = (patient.get("name") or [{}])[0]
    given = list(name.get("given") or [])
    return Person(
        sub=subject_of(snils),
        family_name=str(name.get("family", "")),
        given_name=str(given[0]) if given else "",
        middle_name=str(given[1]) if len(given) > 1 else "",
        birthdate=str(patient.get("birthDate", "")),
        snils=snils,
        note_ru=f"есть карта в демо-данных (как у {login})",
        note_en=f"has a card in the demo data (as {login})",
    )


def _petersburg_patient(engine: Engine, ctx: AccessContext) -> dict[str, Any] | None:
    """One demo patient attached to a St Petersburg (region 78) organisation, if any."""
    region = get_region(engine, PETERSBURG)
    for org in region.settings.organizations if region else ():
        resp = local.call(engine, ctx, "GET", f"Patient?organization=Organization/{org}&_count=1")
        if resp.status != 200:
            continue
        entries = orjson.loads(resp.body_bytes()).get("entry") or []
        if entries:
            found: dict[str, Any] = entries[0]["resource"]
            return found
    return None


def load_persons(engine: Engine) -> list[Person]:
    """The demo patients' persons first, then the newcomers."""
    ctx = AccessContext.system(ACTOR, purpose="stand-in identity provider persons")
    found: list[Person] = []

    def add(person: Person | None) -> None:
        if person is not None and all(p.snils != person.snils for p in found):
            found.append(person)

    for login in DEMO_PATIENT_LOGINS:
        account = accounts.get_by_login(engine, login)
        if account is None or not account.fhir_ref.startswith("Patient/"):
            continue
        resp = local.call(engine, ctx, "GET", account.fhir_ref)
        if resp.status == 200:
            add(_person_from_patient(orjson.loads(resp.body_bytes()), login))
    petersburg = _petersburg_patient(engine, ctx)
    if petersburg is not None:
        person = _person_from_patient(petersburg, "")
        if person is not None:
            add(
                replace(
                    person,
                    note_ru="есть карта в демо-данных, Санкт-Петербург (без семейного анамнеза)",
                    note_en="has a card in the demo data, St Petersburg (no family history)",
                )
            )
    for family, given, middle, born, snils in NEWCOMERS:
        add(
            Person(
                subject_of(snils),
                family,
                given,
                middle,
                born,
                snils,
                "новый для системы: карты нет",
                "new to the system: no card",
            )
        )
    return found


# -- keys and the client --------------------------------------------------------------------


def load_or_create_key(path: Path) -> RSAKey:
    """The provider's RS256 signing key, kept (0600) in the data directory."""
    if path.is_file():
        return RSAKey.import_key(orjson.loads(path.read_bytes()))
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(key.as_dict(private=True)))
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def client_secret_for(key: RSAKey) -> str:
    """The demo client's secret, derived from the provider key (no one more file)."""
    d = key.as_dict(private=True)["d"]
    return hmac.new(str(d).encode(), b"medcard standin client secret v1", "sha256").hexdigest()


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    allowed_hosts: frozenset[str]  # besides loopback

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is required

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """medcard's SSO callback, on loopback or on the deployment's own host."""
        parts = urlsplit(redirect_uri)
        if parts.query or parts.fragment or not _CALLBACK_PATH.match(parts.path):
            return False
        host = parts.hostname or ""
        if host in _LOOPBACK:
            return parts.scheme in ("http", "https")
        return parts.scheme == "https" and parts.netloc in self.allowed_hosts

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic" if endpoint == "token" else True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


# -- requests from the web layer -------------------------------------------------------------


class Request(OAuth2Request):  # type: ignore[misc]
    """What Authlib needs from an HTTP request: method, URL, headers, query and form."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = FormPayload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: list[tuple[str, str]]


# -- the grants --------------------------------------------------------------------------


@dataclass
class _Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    sub: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    auth_time: int
    expires_at: float

    # AuthorizationCodeMixin and the OpenID Connect extension read these.
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


class _PkceRequired(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 for every authorization request, confidential clients too."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "PKCE is required: code_challenge with code_challenge_method=S256",
                redirect_uri=redirect_uri,
            )
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: _Code) -> str:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: _Code) -> str:
        return authorization_code.code_challenge_method


@dataclass
class StandinProvider:
    """The provider: its issuer URL, key, one client and the state of logins in flight."""

    issuer: str
    key: RSAKey
    client: Client
    engine: Engine
    _codes: dict[str, _Code] = field(default_factory=dict, repr=False)
    _tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _persons: tuple[float, list[Person]] | None = field(default=None, repr=False)
    server: AuthorizationServer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.server = _make_server(self)

    # persons -------------------------------------------------------------------------

    def persons(self) -> list[Person]:
        """The persons, read from the demo cards at most every PERSONS_SECONDS (each
        read is audited on those cards; the picker must not flood their access logs)."""
        now = time.monotonic()
        with self._lock:
            cached = self._persons
        if cached is not None and now - cached[0] < PERSONS_SECONDS:
            return cached[1]
        found = load_persons(self.engine)
        if len(found) > len(NEWCOMERS):  # the demo's cards were there: keep them
            with self._lock:
                self._persons = (now, found)
        return found

    def person(self, sub: str) -> Person | None:
        return next((p for p in self.persons() if p.sub == sub), None)

    # documents ---------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """OpenID Connect Discovery 1.0 §3."""
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "family_name",
                "given_name",
                "middle_name",
                "name",
                "birthdate",
                "snils",
            ],
            "service_documentation": f"{base}/",
        }

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "use": "sig", "alg": "RS256"}]}

    # the endpoints (called by web/standin_idp.py) -----------------------------------------

    def check_authorization(self, request: Request) -> Any:
        """Validate an authorization request; the grant (raises OAuth2Error)."""
        return self.server.get_consent_grant(request)

    def authorize(self, request: Request, person: Person | None) -> Answer:
        """The person picked (or None: refused): a redirect back to the client."""
        grant = self.server.get_consent_grant(request, end_user=person)
        answer: Answer = self.server.create_authorization_response(
            request, grant_user=person, grant=grant
        )
        return answer

    def token(self, request: Request) -> Answer:
        answer: Answer = self.server.create_token_response(request)
        return answer

    def userinfo(self, authorization: str) -> dict[str, Any] | None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        with self._lock:
            found = self._tokens.get(value)
        if found is None or found[2] < time.time():
            return None
        sub, scope, _ = found
        person = self.person(sub)
        return dict(user_info(person, scope)) if person else None

    # storage for the grants -----------------------------------------------------------

    def save_code(self, item: _Code) -> None:
        now = time.time()
        with self._lock:
            for code, old in list(self._codes.items()):
                if old.expires_at < now:
                    del self._codes[code]
            self._codes[item.code] = item

    def take_code(self, code: str, client_id: str) -> _Code | None:
        with self._lock:
            item = self._codes.get(code)
        if item is None or item.client_id != client_id or item.expires_at < time.time():
            return None
        return item

    def delete_code(self, item: _Code) -> None:
        with self._lock:
            self._codes.pop(item.code, None)

    def nonce_used(self, nonce: str) -> bool:
        with self._lock:
            return any(c.nonce == nonce for c in self._codes.values())

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        now = time.time()
        with self._lock:
            for value, (_, _, expires) in list(self._tokens.items()):
                if expires < now:
                    del self._tokens[value]
            self._tokens[token["access_token"]] = (
                request.user.sub,
                str(token.get("scope", "")),
                now + int(token.get("expires_in", TOKEN_SECONDS)),
            )


def user_info(person: Person, scope: str) -> UserInfo:
    scopes = set(scope.split())
    info = UserInfo(sub=person.sub)
    if "profile" in scopes:
        info.update(
            family_name=person.family_name,
            given_name=person.given_name,
            middle_name=person.middle_name,
            name=person.full_name,
        )
    if "profile" in scopes or "birthdate" in scopes:
        info["birthdate"] = person.birthdate
    if "snils" in scopes:
        info["snils"] = person.snils
    return info


def _make_server(provider: StandinProvider) -> AuthorizationServer:
    class Server(AuthorizationServer):  # type: ignore[misc]
        def query_client(self, client_id: str) -> Client | None:
            return provider.client if client_id == provider.client.client_id else None

        def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
            provider.save_token(token, request)

        def create_oauth2_request(self, request: Request) -> Request:
            return request

        def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
            text = body if isinstance(body, str) else orjson.dumps(body).decode()
            return Answer(status, text, list(headers))

        def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
            return None

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

        def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
            data = request.payload.data
            provider.save_code(
                _Code(
                    code=code,
                    client_id=request.client.client_id,
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=request.client.get_allowed_scope(data.get("scope", "")),
                    sub=request.user.sub,
                    nonce=data.get("nonce", ""),
                    code_challenge=data.get("code_challenge", ""),
                    code_challenge_method=data.get("code_challenge_method", ""),
                    auth_time=int(time.time()),
                    expires_at=time.time() + CODE_SECONDS,
                )
            )

        def query_authorization_code(self, code: str, client: Client) -> _Code | None:
            return provider.take_code(code, client.client_id)

        def delete_authorization_code(self, authorization_code: _Code) -> None:
            provider.delete_code(authorization_code)

        def authenticate_user(self, authorization_code: _Code) -> Person | None:
            return provider.person(authorization_code.sub)

    class IdToken(OpenIDCode):  # type: ignore[misc]
        def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
            return provider.nonce_used(nonce)

        def resolve_client_private_key(self, client: Client) -> RSAKey:
            return provider.key

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def get_encode_header(self, client: Client) -> dict[str, str]:
            return {"alg": "RS256", "kid": str(provider.key.kid), "typ": "JWT"}

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            return {"iss": provider.issuer, "aud": [client.client_id]}

        def generate_user_info(self, user: Person, scope: str) -> UserInfo:
            return user_info(user, scope)

    server = Server(scopes_supported=list(SCOPES))
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            access_token_generator=lambda *a, **k: secrets.token_urlsafe(32),
            expires_generator=lambda *a, **k: TOKEN_SECONDS,
        ),
    )
    server.register_grant(CodeGrant, [IdToken(require_nonce=True), _PkceRequired(required=True)])
    return server


def make_provider(
    issuer: str, key_path: Path, engine: Engine, allowed_hosts: frozenset[str]
) -> StandinProvider:
    key = load_or_create_key(key_path)
    client = Client(CLIENT_ID, client_secret_for(key), allowed_hosts)
    return StandinProvider(issuer.rstrip("/"), key, client, engine)
