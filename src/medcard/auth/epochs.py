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
change when their cached value expires, within ``TTL_S``, or at once when Redis is
configured (:func:`configure`): the revoking process publishes the account id on
``CHANNEL`` and every process listening drops its cached value.  Refresh tokens are rows in
``oauth_tokens`` and are marked revoked in the same transaction, so the token
endpoint refuses them at once in every process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, cast

import redis
from sqlalchemy import Connection, Engine, select, update

from medcard.auth.oauth import revocation
from medcard.db.tables import accounts, oauth_tokens

TTL_S = 3.0
CLAIM = "rev"  # the account's epoch when the token was minted
CHANNEL = "medcard:token-epochs"  # Redis: account ids whose epoch just changed
_MAX_ENTRIES = 50_000
_cache: dict[str, tuple[float, int]] = {}
_lock = threading.Lock()
_publisher: dict[str, redis.Redis] = {}  # "": the client revocations are published with
_listening: set[str] = set()
log = logging.getLogger("medcard.auth")


def configure(redis_url: str, *, listen: bool = True) -> None:
    """Tell other processes about revocations through Redis (and, with ``listen``, hear
    theirs: one daemon thread per process).  Without Redis the TTL alone bounds them."""
    if not redis_url:
        return
    _publisher[""] = redis.Redis.from_url(redis_url)
    with _lock:
        if not listen or redis_url in _listening:
            return
        _listening.add(redis_url)
    threading.Thread(target=_listen, args=(redis_url,), name="token-epochs", daemon=True).start()


def _listen(redis_url: str) -> None:
    while True:
        try:
            client = redis.Redis.from_url(redis_url)
            # Any: redis-py's typing of pubsub differs between releases (8.1 and 8.2)
            pubsub: Any = cast(Any, client).pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(CHANNEL)
            for message in pubsub.listen():
                data = message.get("data")
                if isinstance(data, bytes):
                    with _lock:
                        _cache.pop(data.decode(), None)
        except redis.RedisError as exc:  # the TTL still bounds staleness meanwhile
            log.warning("token-epoch invalidations from Redis interrupted: %s", exc)
            with _lock:
                _cache.clear()  # messages may have been missed
            time.sleep(1)


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
    publisher = _publisher.get("")
    if publisher is not None:
        try:
            publisher.publish(CHANNEL, account_id)
        except redis.RedisError as exc:  # committed already; other workers catch up by TTL
            log.warning("could not publish a token revocation to Redis: %s", exc)


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
