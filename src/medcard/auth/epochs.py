"""Per-account revocation epochs: sign out once, and every token of the account stops.

An access token is a self-contained JWT valid for up to an hour.  To end it early for
a whole account (logout, deactivation, password or role change) each account row
carries ``token_epoch``, an integer bumped by :func:`revoke_account_tokens`; tokens
minted for the account carry the epoch current at minting (claim ``rev``, see
:func:`mint_claim`), and ``/fhir`` refuses a token whose ``rev`` is below the
account's epoch now (:class:`AccountEpochs`).

The epoch is read from the database at most once per ``TTL_S`` seconds per account and
process, so a token in steady use costs no database round trip per request.  The
process that revokes forgets its cached value at once; other worker processes see the
change when their cached value expires, within ``TTL_S``.  Refresh tokens are rows in
``oauth_tokens`` and are marked revoked in the same transaction, so the token
endpoint refuses them at once in every process.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import Connection, Engine, select, update

from medcard.auth.oauth import revocation
from medcard.db.tables import accounts, oauth_tokens

TTL_S = 3.0
CLAIM = "rev"  # the account's epoch when the token was minted
_MAX_ENTRIES = 50_000
_cache: dict[str, tuple[float, int]] = {}
_lock = threading.Lock()


def current(conn: Connection, account_id: str) -> int:
    """The account's epoch now, from the database (0 for an unknown account)."""
    epoch = conn.execute(select(accounts.c.token_epoch).where(accounts.c.id == account_id)).scalar()
    return int(epoch or 0)


def mint_claim(engine: Engine, account_id: str) -> dict[str, int]:
    """The claim to put in a token minted now for ``account_id`` (read fresh, not cached:
    a token minted just after a revocation in another process must carry the new epoch)."""
    with engine.connect() as conn:
        return {CLAIM: current(conn, account_id)}


def revoke_account_tokens(conn: Connection, account_id: str) -> list[str]:
    """Bump the account's epoch and revoke its stored access and refresh tokens, in the
    caller's transaction; returns the access-token jtis revoked.  Call :func:`forget`
    with the account id once the transaction has committed."""
    conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(token_epoch=accounts.c.token_epoch + 1)
    )
    jtis = [
        str(r.token_hash)
        for r in conn.execute(
            select(oauth_tokens.c.token_hash).where(
                oauth_tokens.c.account_id == account_id,
                oauth_tokens.c.kind == "access",
                oauth_tokens.c.revoked.is_(False),
            )
        )
    ]
    conn.execute(
        update(oauth_tokens)
        .where(oauth_tokens.c.account_id == account_id, oauth_tokens.c.revoked.is_(False))
        .values(revoked=True)
    )
    return jtis


def forget(account_id: str, jtis: list[str] | None = None) -> None:
    """Drop this process's cached epoch (and token answers) after a revocation."""
    with _lock:
        _cache.pop(account_id, None)
    revocation.forget(jtis or [])


class AccountEpochs:
    """The epoch check ``/fhir`` makes, cached in-process for ``TTL_S`` seconds."""

    def __init__(self, engine: Engine, ttl_s: float = TTL_S) -> None:
        self.engine = engine
        self.ttl_s = ttl_s

    def epoch(self, account_id: str) -> int:
        now = time.monotonic()
        hit = _cache.get(account_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.engine.connect() as conn:
            value = current(conn, account_id)
        with _lock:
            if len(_cache) >= _MAX_ENTRIES:
                for key in [k for k, (until, _) in _cache.items() if until <= now] or list(_cache):
                    del _cache[key]
            _cache[account_id] = (now + self.ttl_s, value)
        return value

    def revoked(self, account_id: str, minted_at_epoch: int) -> bool:
        return minted_at_epoch < self.epoch(account_id)
