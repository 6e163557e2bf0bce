"""The SSO checks a well-behaved provider never trips: forged, misdirected or stale
ID tokens, tampered cookies, bad discovery documents, bad configuration.

No provider runs here: the keys and discovery document are given to the client
directly, and the tokens are made with joserfc.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey
from pydantic import ValidationError
from sqlalchemy import Engine

from medcard.auth.sso import (
    ConsumedStates,
    CookieSeal,
    Failure,
    Identity,
    OidcProvider,
    Outcome,
    PendingLogin,
    ProviderMetadata,
    SsoError,
    _Cached,
    _parse_metadata,
    derive_state_secret,
    mask_snils,
)
from medcard.config import Settings, SsoProvider

ISSUER = "https://esia.example.ru"
CLIENT = "medcard"
NONCE = "n-0S6_WzA2Mj"
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
META = ProviderMetadata(
    issuer=ISSUER,
    authorization_endpoint=ISSUER + "/auth",
    token_endpoint=ISSUER + "/token",
    jwks_uri=ISSUER + "/jwks",
    userinfo_endpoint=None,
    id_token_algorithms=("ES256", "HS256"),
)


def _provider() -> OidcProvider:
    provider = OidcProvider("77", SsoProvider(issuer=ISSUER, client_id=CLIENT))
    public = KeySet.import_key_set({"keys": [KEY.as_dict(private=False)]})
    provider._keys = _Cached(public, time.monotonic())  # as if just fetched from jwks_uri
    return provider


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "1000299654",
        "aud": CLIENT,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        "snils": "112-233-445 95",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], key: Any = KEY, alg: str = "ES256") -> str:
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key, algorithms=[alg])


def _validate(raw: str, nonce: str = NONCE) -> dict[str, Any]:
    return asyncio.run(_provider()._validated_claims(None, META, raw, nonce))  # type: ignore[arg-type]


def test_a_valid_id_token_passes() -> None:
    claims = _validate(_token(_claims()))
    assert claims["sub"] == "1000299654"


def test_several_audiences_need_azp_naming_this_client() -> None:
    with pytest.raises(SsoError) as exc:
        _validate(_token(_claims(aud=[CLIENT, "other"])))
    assert exc.value.failure is Failure.ID_TOKEN_INVALID
    assert _validate(_token(_claims(aud=[CLIENT, "other"], azp=CLIENT)))["azp"] == CLIENT


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(_claims(aud="someone-else"), id="other-audience"),
        pytest.param(_claims(iss="https://evil.example"), id="other-issuer"),
        pytest.param(_claims(exp=int(time.time()) - 3600), id="expired"),
        pytest.param(_claims(iat=int(time.time()) + 3600), id="issued-in-the-future"),
        pytest.param(_claims(nonce="another-login"), id="other-nonce"),
        pytest.param(_claims(nonce=None), id="no-nonce"),
        pytest.param(_claims(sub=None), id="no-sub"),
        pytest.param(_claims(aud=[CLIENT, "other"], azp="other"), id="azp-other-client"),
    ],
)
def test_id_token_with_wrong_claims_is_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(SsoError) as exc:
        _validate(_token(claims))
    assert exc.value.failure is Failure.ID_TOKEN_INVALID


def test_id_token_signed_by_another_key_is_refused() -> None:
    other = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    with pytest.raises(SsoError) as exc:
        _validate(_token(_claims(), key=other))
    assert exc.value.failure is Failure.ID_TOKEN_INVALID


def test_hmac_and_unsigned_id_tokens_are_refused() -> None:
    secret = OctKey.import_key(b"the client secret, known to the client too")
    with pytest.raises(SsoError):
        _validate(_token(_claims(), key=secret, alg="HS256"))

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = b64({"alg": "none"}) + "." + b64(_claims()) + "."
    with pytest.raises(SsoError) as exc:
        _validate(unsigned)
    assert exc.value.failure is Failure.ID_TOKEN_INVALID


def _discovery(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/auth",
        "token_endpoint": ISSUER + "/token",
        "jwks_uri": ISSUER + "/jwks",
        "code_challenge_methods_supported": ["S256"],
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(_discovery(issuer="https://elsewhere.example"), id="other-issuer"),
        pytest.param(_discovery(token_endpoint="http://esia.example.ru/token"), id="plain-http"),
        pytest.param(_discovery(jwks_uri=None), id="no-jwks"),
        pytest.param(_discovery(code_challenge_methods_supported=["plain"]), id="no-s256"),
    ],
)
def test_unusable_discovery_documents_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(SsoError) as exc:
        _parse_metadata(doc, ISSUER)
    assert exc.value.failure is Failure.PROVIDER_ERROR


def test_discovery_defaults_to_rs256() -> None:
    assert _parse_metadata(_discovery(), ISSUER).id_token_algorithms == ("RS256",)


def _seal(max_age: int = 600) -> CookieSeal:
    return CookieSeal(derive_state_secret(KEY), max_age)


PENDING = PendingLogin("77", "state-1", "nonce-1", "verifier-1", "https://medcard/cb")


def test_state_cookie_round_trip_and_tampering() -> None:
    seal = _seal()
    value = seal.seal_login(PENDING)
    assert seal.open_login(value) == PENDING
    # Someone else's state under this cookie's signature.
    other_payload = seal.seal_login(PendingLogin("77", "mine", "n", "v", "https://x/cb"))
    _, timestamp, signature = value.rsplit(".", 2)
    forged = f"{other_payload.rsplit('.', 2)[0]}.{timestamp}.{signature}"
    for bad in (None, "", value[:-3] + "xyz", forged):
        with pytest.raises(SsoError) as exc:
            seal.open_login(bad)
        assert exc.value.failure is Failure.BAD_STATE
    # Another server (another signing key) cannot make cookies for this one.
    other = CookieSeal(derive_state_secret(ECKey.generate_key("P-256")), 600)
    with pytest.raises(SsoError):
        seal.open_login(other.seal_login(PENDING))


def test_state_cookie_expires() -> None:
    value = _seal().seal_login(PENDING)
    with pytest.raises(SsoError) as exc:
        _seal(max_age=-1).open_login(value)
    assert exc.value.failure is Failure.BAD_STATE
    assert "expired" in exc.value.detail


def test_outcome_cookie_round_trip() -> None:
    seal = _seal()
    outcome = Outcome("77", Failure.NO_CARD, "***-***-445 95")
    assert seal.open_outcome(seal.seal_outcome(outcome)) == outcome
    assert seal.open_outcome(seal.seal_outcome(outcome)[:-2] + "xx") is None
    assert seal.open_outcome(None) is None


def test_a_state_is_accepted_once(engine: Engine) -> None:
    consumed = ConsumedStates(engine, ttl_seconds=600)
    assert consumed.consume("s1")
    assert not consumed.consume("s1")
    assert consumed.consume("s2")


def test_snils_is_masked_and_long_subjects_fit_the_login_column() -> None:
    assert mask_snils("11223344595") == "***-***-445 95"
    assert mask_snils("garbage") == "***"
    assert Identity("77", "1000299654", "11223344595").login == "sso:77:1000299654"
    long_login = Identity("77", "x" * 500, "11223344595").login
    assert long_login.startswith("sso:77:sha256-")
    assert len(long_login) < 255


def test_providers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MEDCARD_SSO_PROVIDERS",
        json.dumps(
            {
                "77": {
                    "issuer": ISSUER,
                    "client_id": "medcard-moscow",
                    "client_secret": "s3cret",
                },
                "50": {"name": "Госуслуги МО", "issuer": ISSUER, "client_id": "medcard-mo"},
            }
        ),
    )
    providers = Settings().sso_providers
    assert providers["77"].name == "Госуслуги"
    assert providers["77"].scope == "openid profile snils"
    assert providers["77"].snils_claim == "snils"
    assert providers["77"].client_secret is not None
    assert providers["77"].client_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(providers["77"])
    assert providers["50"].client_secret is None
    assert providers["50"].name == "Госуслуги МО"


@pytest.mark.parametrize(
    "provider",
    [
        pytest.param({"issuer": "http://esia.example.ru", "client_id": "x"}, id="plain-http"),
        pytest.param({"issuer": ISSUER, "client_id": "x", "scope": "profile"}, id="no-openid"),
        pytest.param(
            {"issuer": ISSUER, "client_id": "x", "redirect_base": "http://medcard.example"},
            id="plain-http-redirect",
        ),
        pytest.param({"issuer": ISSUER}, id="no-client"),
    ],
)
def test_bad_provider_configuration_is_refused(provider: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(sso_providers={"77": provider})  # type: ignore[dict-item]


def test_bad_region_codes_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(sso_providers={"77/../x": {"issuer": ISSUER, "client_id": "x"}})  # type: ignore[dict-item]
