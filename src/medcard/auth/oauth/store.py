"""Authorization codes, refresh tokens and issued access tokens (tables of migration 0002).

Nothing secret is stored in the clear: codes and refresh tokens are kept as SHA-256
hashes; access tokens are JWTs and only their ``jti`` is kept, so that revocation can
reach them.

A *grant family* ties together everything one authorization produced: the code, the
access tokens and every rotated refresh token.  Its id (16 hex characters) prefixes the
stored key of each token row (``<family>.<jti>`` for access tokens,
``<family>.<hash>`` for refresh tokens), so one indexed range scan on the primary key
finds the whole family.  That is what makes "revoking a refresh token revokes the
access tokens issued from it" and "a replayed code or refresh token revokes the grant"
(RFC 6749 §4.1.2, RFC 9700 §4.14.2) possible without another column.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select, update

from medcard import clock
from medcard.access.roles import Role
from medcard.db.tables import accounts, oauth_codes, oauth_tokens

CODE_LIFETIME_S = 60
REFRESH_LIFETIME_S = 30 * 24 * 3600
FAMILY_LEN = 16
_S = 1_000_000  # microseconds per second


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_family() -> str:
    return secrets.token_hex(FAMILY_LEN // 2)


def family_of_code(code_hash: str) -> str:
    return code_hash[:FAMILY_LEN]


def _family_range(family: str) -> Any:
    col = oauth_tokens.c.token_hash
    return and_(col >= f"{family}.", col < f"{family}/")  # '/' sorts right after '.'


@dataclass(frozen=True)
class ResourceOwner:
    """The signed-in account an app acts for.

    ``mfa_ok``: the browser session that authorizes passed the second factor; known only
    while authorizing (an owner loaded from the database at the token endpoint has no
    session, and says False).
    """

    account_id: str
    role: str
    fhir_ref: str
    display_name: str = ""
    active: bool = True
    organization_ref: str = ""
    mfa_ok: bool = False

    @property
    def is_staff(self) -> bool:
        return self.role != Role.PATIENT.value

    @property
    def patient_id(self) -> str:
        if self.role == "patient" and self.fhir_ref.startswith("Patient/"):
            return self.fhir_ref.removeprefix("Patient/")
        return ""

    @property
    def subject(self) -> str:
        return self.fhir_ref or f"Account/{self.account_id}"

    def get_user_id(self) -> str:  # Authlib's user protocol
        return self.account_id


def load_owner(engine: Engine, account_id: str) -> ResourceOwner | None:
    if not account_id:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    if row is None:
        return None
    return ResourceOwner(
        account_id=row.id,
        role=row.role,
        fhir_ref=row.fhir_ref,
        display_name=row.display_name,
        active=bool(row.active),
        organization_ref=row.organization_ref,
    )


# -- authorization codes ----------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationCode:
    """A stored code, shaped for Authlib's ``AuthorizationCodeMixin``."""

    code_hash: str
    client_id: str
    account_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    patient_id: str
    nonce: str
    expires: int
    used: bool

    @property
    def family(self) -> str:
        return family_of_code(self.code_hash)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


def save_code(
    engine: Engine,
    code: str,
    *,
    client_id: str,
    account_id: str,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    code_challenge_method: str,
    patient_id: str,
    nonce: str = "",
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(oauth_codes).values(
                code_hash=sha256(code),
                client_id=client_id,
                account_id=account_id,
                redirect_uri=redirect_uri,
                scope=scope,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                patient_id=patient_id,
                nonce=nonce[:255],
                expires=clock.now_micros() + CODE_LIFETIME_S * _S,
                used=False,
            )
        )


class CodeRefusedError(Exception):
    """Why a code cannot be exchanged: unknown, expired or already used."""

    def __init__(self, reason: str, code: AuthorizationCode | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def claim_code(engine: Engine, code: str, client_id: str) -> AuthorizationCode:
    """Mark the code used and return it, exactly once (a compare-and-set on ``used``).

    A second exchange of the same code finds it used: the caller then revokes the
    grant family, since one of the two presenters is not the app.
    """
    code_hash = sha256(code)
    now = clock.now_micros()
    with engine.begin() as conn:
        claimed = conn.execute(
            update(oauth_codes)
            .where(
                oauth_codes.c.code_hash == code_hash,
                oauth_codes.c.client_id == client_id,
                oauth_codes.c.used.is_(False),
                oauth_codes.c.expires > now,
            )
            .values(used=True)
        ).rowcount
        row = conn.execute(select(oauth_codes).where(oauth_codes.c.code_hash == code_hash)).first()
    if row is None or row.client_id != client_id:
        # Another client's code is as good as unknown to this one (nothing leaks).
        raise CodeRefusedError("unknown")
    stored = AuthorizationCode(
        code_hash=row.code_hash,
        client_id=row.client_id,
        account_id=row.account_id,
        redirect_uri=row.redirect_uri,
        scope=row.scope,
        code_challenge=row.code_challenge,
        code_challenge_method=row.code_challenge_method,
        patient_id=row.patient_id,
        nonce=row.nonce,
        expires=row.expires,
        used=bool(row.used),
    )
    if claimed == 1:
        return stored
    raise CodeRefusedError("replayed" if row.used else "expired", stored)


# -- tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRecord:
    """A stored access or refresh token, shaped for Authlib's ``TokenMixin``."""

    key: str  # token_hash column: <family>.<jti> or <family>.<hash>
    kind: str  # access | refresh
    client_id: str
    account_id: str
    scope: str
    patient_id: str
    issued: int
    expires: int
    revoked: bool
    claims: dict[str, Any] | None = None  # an access token's verified JWT claims

    @property
    def family(self) -> str:
        return self.key.partition(".")[0]

    def check_client(self, client: Any) -> bool:
        return bool(client is not None and client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, (self.expires - clock.now_micros()) // _S)

    def is_expired(self) -> bool:
        return self.expires <= clock.now_micros()

    def is_revoked(self) -> bool:
        return self.revoked


def _record(row: Any, claims: dict[str, Any] | None = None) -> TokenRecord:
    return TokenRecord(
        key=row.token_hash,
        kind=row.kind,
        client_id=row.client_id,
        account_id=row.account_id,
        scope=row.scope,
        patient_id=row.patient_id,
        issued=row.issued,
        expires=row.expires,
        revoked=bool(row.revoked),
        claims=claims,
    )


def refresh_key(refresh_token: str) -> str | None:
    """The stored key of a refresh token ``<family>.<secret>``; None if malformed."""
    family, dot, secret = refresh_token.partition(".")
    if not dot or len(family) != FAMILY_LEN or not secret or len(refresh_token) > 200:
        return None
    if any(c not in "0123456789abcdef" for c in family):
        return None
    return f"{family}.{sha256(secret)[: 64 - FAMILY_LEN - 1]}"


def new_refresh_token(family: str) -> str:
    return f"{family}.{secrets.token_urlsafe(32)}"


def save_tokens(
    engine: Engine,
    *,
    client_id: str,
    account_id: str,
    scope: str,
    patient_id: str,
    jti: str,
    access_exp: int,
    refresh_token: str | None,
    refresh_scope: str = "",
) -> None:
    """Record an issued access token (by jti) and, if any, its refresh token (by hash)."""
    now = clock.now_micros()
    rows = [
        {
            "token_hash": jti,
            "kind": "access",
            "client_id": client_id,
            "account_id": account_id,
            "scope": scope,
            "patient_id": patient_id,
            "issued": now,
            "expires": access_exp * _S,  # the JWT exp, epoch seconds
            "revoked": False,
        }
    ]
    if refresh_token:
        key = refresh_key(refresh_token)
        assert key is not None
        rows.append(
            {
                **rows[0],
                "token_hash": key,
                "kind": "refresh",
                "scope": refresh_scope or scope,
                "expires": now + REFRESH_LIFETIME_S * _S,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(oauth_tokens), rows)


def find_token(engine: Engine, key: str, kind: str) -> TokenRecord | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(oauth_tokens).where(
                oauth_tokens.c.token_hash == key, oauth_tokens.c.kind == kind
            )
        ).first()
    return None if row is None else _record(row)


def claim_refresh(engine: Engine, key: str) -> bool:
    """Retire a refresh token as it is used (rotation); False if someone used it first."""
    with engine.begin() as conn:
        return bool(
            conn.execute(
                update(oauth_tokens)
                .where(
                    oauth_tokens.c.token_hash == key,
                    oauth_tokens.c.kind == "refresh",
                    oauth_tokens.c.revoked.is_(False),
                )
                .values(revoked=True)
            ).rowcount
        )


def revoke_key(engine: Engine, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(oauth_tokens).where(oauth_tokens.c.token_hash == key).values(revoked=True)
        )


def revoke_family(engine: Engine, family: str) -> list[str]:
    """Revoke every token of a grant family; returns the access-token jtis revoked."""
    with engine.begin() as conn:
        return _revoke_family(conn, family)


def _revoke_family(conn: Connection, family: str) -> list[str]:
    jtis = [
        r.token_hash
        for r in conn.execute(
            select(oauth_tokens.c.token_hash).where(
                _family_range(family), oauth_tokens.c.kind == "access"
            )
        )
    ]
    conn.execute(update(oauth_tokens).where(_family_range(family)).values(revoked=True))
    return jtis


def purge_expired(engine: Engine, grace_s: int = 24 * 3600) -> int:
    """Delete codes and tokens that expired more than ``grace_s`` ago (housekeeping)."""
    cutoff = clock.now_micros() - grace_s * _S
    with engine.begin() as conn:
        n = conn.execute(oauth_codes.delete().where(oauth_codes.c.expires < cutoff)).rowcount
        n += conn.execute(oauth_tokens.delete().where(oauth_tokens.c.expires < cutoff)).rowcount
    return int(n)
