"""Settings from the environment (prefix ``MEDCARD_``), one object passed down explicitly."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _https_or_loopback(url: str, what: str) -> str:
    """OpenID Connect needs TLS; plain http is allowed only on loopback (tests, development)."""
    parts = urlsplit(url)
    if not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{what} must be an absolute URL without query or fragment: {url!r}")
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise ValueError(f"{what} must use https (http only on loopback): {url!r}")
    return url


class SsoProvider(BaseModel):
    """One region's national identity provider ("Войти через Госуслуги"), an OpenID
    Connect issuer; its endpoints come from ``{issuer}/.well-known/openid-configuration``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "Госуслуги"  # shown on the button: «Войти через Госуслуги»
    issuer: str
    client_id: str
    client_secret: SecretStr | None = None  # None: a public client (PKCE alone)
    scope: str = "openid profile snils"
    snils_claim: str = "snils"
    # Public base URL registered at the provider; the redirect URI is
    # {redirect_base}/auth/sso/{region}/callback.  Empty: MEDCARD_BASE_URL, else the
    # base URL of the request.
    redirect_base: str = ""

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        return _https_or_loopback(v, "issuer")

    @field_validator("redirect_base")
    @classmethod
    def _redirect_base(cls, v: str) -> str:
        return _https_or_loopback(v.rstrip("/"), "redirect_base") if v else v

    @field_validator("scope")
    @classmethod
    def _scope(cls, v: str) -> str:
        if "openid" not in v.split():
            raise ValueError("scope must include openid")
        return v


class Settings(BaseSettings):
    """Everything an operator may change without touching code."""

    model_config = SettingsConfigDict(env_prefix="MEDCARD_", env_file=None, extra="ignore")

    data_dir: Path = Path("var")
    database_url: str = ""
    base_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 16 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1000
    token_issuer: str = "medcard"  # noqa: S105 - an issuer name, not a secret
    token_lifetime_seconds: int = 3600
    db_pool_size: int = 10
    # Sign-in: automatic logoff after inactivity, per kind of account, and cookie policy.
    staff_idle_minutes: int = 15
    patient_idle_minutes: int = 30
    session_max_hours: int = 12  # absolute lifetime of a session, however active
    secure_cookies: bool = False  # force the Secure flag (set it behind a TLS-terminating proxy)
    demo_mode: bool = False  # demo conveniences, e.g. password-reset links shown on the page
    # National SSO: region code → OpenID Connect provider, from JSON, e.g.
    # MEDCARD_SSO_PROVIDERS='{"77": {"issuer": "https://...", "client_id": "..."}}'
    sso_providers: dict[str, SsoProvider] = {}
    # The demo's stand-in national identity provider (auth/standin_idp.py), served at
    # /standin-idp and added to sso_providers for the demo regions; `serve --demo` turns
    # it on.  Never for real people: anyone can sign in as any of its persons.
    standin_idp: bool = False
    sso_state_seconds: int = 600  # how long a started SSO login may take
    sso_http_timeout_seconds: float = 10.0  # calls to the provider (discovery, token, keys)
    # Web pages (browser apps) allowed to call /fhir and the token endpoint, as JSON, e.g.
    # MEDCARD_CORS_ORIGINS='["https://diary.example"]'.  Empty: no CORS headers at all.
    cors_origins: list[str] = []
    # Background jobs (medcard.jobs): "embedded" consumes in the web process (SQLite queue
    # file in data_dir, or Redis when redis_url is set); "external" leaves consuming to
    # `medcard worker`; "immediate" runs jobs inline (tests).
    jobs_mode: Literal["embedded", "external", "immediate"] = "embedded"
    jobs_workers: int = 2
    redis_url: str = ""  # e.g. redis://127.0.0.1:6379/0 in production
    billing_sweep: bool = True  # bill new entries every minute (medcard.billing.jobs)
    # Sign-in, registration, /verify and the token endpoint are rate-limited per source
    # address and account in the shared store (auth.ratelimit); the suite turns it off
    # except where it is tested.
    rate_limits: bool = True
    # Getting access to the card (medcard.onboarding): identity checks allowed per account
    # per 24 hours, and the promised delivery time of requested documents, in business
    # days (Saturdays and Sundays do not count).
    access_checks_per_day: int = 5
    document_request_business_days: int = 1

    # Errors in the card (medcard.corrections): days an authority has to answer a report,
    # per authority type, as JSON, e.g. MEDCARD_CORRECTION_DEADLINE_DAYS='{"insurer": 15}'.
    # Defaults: 30 days, the response time of 59-FZ art. 12 (state bodies, the prosecutor's
    # office) and of the OMS rules (insurers); missing types keep their default.
    correction_deadline_days: dict[str, int] = {}

    @field_validator("sso_providers")
    @classmethod
    def _sso_regions(cls, v: dict[str, SsoProvider]) -> dict[str, SsoProvider]:
        for region in v:
            if not (region.isascii() and region.isalnum() and 1 <= len(region) <= 16):
                raise ValueError(f"SSO region codes are 1-16 letters or digits: {region!r}")
        return v

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins(cls, v: list[str]) -> list[str]:
        """Exact origins only (scheme://host[:port]): no wildcard, path or query."""
        out = []
        for origin in v:
            parts = urlsplit(origin.rstrip("/"))
            exact = (
                parts.scheme in ("https", "http")
                and parts.hostname
                and "@" not in parts.netloc
                and not (parts.path or parts.query or parts.fragment or "*" in origin)
            )
            if not exact:
                raise ValueError(f"a CORS origin is scheme://host[:port]: {origin!r}")
            out.append(f"{parts.scheme}://{parts.netloc}")
        return out

    @cached_property
    def resolved_database_url(self) -> str:
        """The configured store, or an SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'medcard.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def signing_key_path(self) -> Path:
        return self.data_dir / "signing-key.json"
