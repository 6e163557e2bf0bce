"""Rate limits that every worker enforces together (issue 14 item 5).

Fixed one-minute windows counted in the shared store: Redis (``INCR`` with an expiry)
when ``redis_url`` is set, else the ``rate_counters`` table (one upsert per hit), so
several ``medcard serve`` processes enforce one limit, not one each.  Limits are per
source address and, where a login is named, per account: one client cannot try many
accounts, and many clients cannot try one (the account lockout in ``auth.accounts``
stays as the slower, longer brake).

The same counters fold refused API requests into the audit (``AuditFolding``): the
first few from a source in a minute are written one by one, the rest are counted and
written as "N refused requests from X in minute M", so a flood of bad tokens cannot
fill the audit log.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import redis as _redis
from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from medcard.db.tables import rate_counters


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int  # hits allowed per window
    window_s: int = 60


# Per minute.  Generous enough for a polyclinic's staff behind one address, far below
# what a password-guessing script needs.
LOGIN_IP = Rule("login-ip", 60)
LOGIN_ACCOUNT = Rule("login-account", 10)
REGISTER_IP = Rule("register-ip", 10)
VERIFY_IP = Rule("verify-ip", 20)
RESET_IP = Rule("reset-ip", 10)
MFA_IP = Rule("mfa-ip", 30)
TOKEN_IP = Rule("token-ip", 300)


@dataclass(frozen=True)
class Hit:
    count: int  # hits in this window, this one included
    allowed: bool
    retry_after: int  # seconds until the window ends
    window: int  # window start, seconds since the epoch


class Limiter:
    """Counts hits per (rule, who) in the shared store."""

    def __init__(self, engine: Engine, redis_url: str = "", enabled: bool = True) -> None:
        self._engine = engine
        self._redis = _redis.Redis.from_url(redis_url) if redis_url else None
        self.enabled = enabled

    def hit(self, rule: Rule, who: str, now: float | None = None) -> Hit:
        now = time.time() if now is None else now
        window = int(now) // rule.window_s * rule.window_s
        retry = max(1, window + rule.window_s - int(now))
        if not self.enabled:
            return Hit(0, True, retry, window)
        count = self.count(f"{rule.name}:{who}"[:200], window, rule.window_s)
        return Hit(count, count <= rule.limit, retry, window)

    def count(self, key: str, window: int, window_s: int) -> int:
        """Add one hit to (key, window) and return the window's total."""
        if self._redis is not None:
            name = f"medcard:rate:{key}:{window}"
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, window_s * 2)
            total, _ = pipe.execute()
            return int(total)
        expires = window + window_s * 2
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(rate_counters).values(key=key, window=window, hits=1, expires=expires)
        stmt = stmt.on_conflict_do_update(
            index_elements=[rate_counters.c.key, rate_counters.c.window],
            set_={"hits": rate_counters.c.hits + 1},
        ).returning(rate_counters.c.hits)
        with self._engine.begin() as conn:
            total = int(conn.execute(stmt).scalar_one())
            if random.random() < 0.02:  # noqa: S311 - housekeeping, not security
                conn.execute(
                    delete(rate_counters).where(rate_counters.c.expires < int(time.time()))
                )
        return total

    def peek(self, key: str, window: int) -> int:
        """The total of a window without adding to it (0 when none or expired)."""
        if self._redis is not None:
            raw = self._redis.get(f"medcard:rate:{key}:{window}")
            return int(raw) if raw else 0
        from sqlalchemy import select

        with self._engine.connect() as conn:
            found = conn.execute(
                select(rate_counters.c.hits).where(
                    rate_counters.c.key == key, rate_counters.c.window == window
                )
            ).scalar()
        return int(found or 0)


# -- folding refused API requests into the audit ------------------------------------------

AUDIT_ONE_BY_ONE = 10  # refused requests per source and minute written one by one
_MILESTONES = frozenset({100, 1_000, 10_000, 100_000, 1_000_000})


@dataclass(frozen=True)
class Folding:
    write_this: bool  # write this refusal as its own audit entry
    note: str  # an extra entry to write ("" for none)


def fold_refusal(limiter: Limiter, source: str, now: float | None = None) -> Folding:
    """Whether to audit this refused request on its own, and what summary to add.

    The first ``AUDIT_ONE_BY_ONE`` of a minute are written; the next one writes a note
    that further ones are counted, and the 100th, 1,000th, ... the count so far; the
    first refusal from the same source in the next minute writes the previous minute's
    total.  Off with the rate limits (``MEDCARD_RATE_LIMITS=0``, as in the suite)."""
    if not limiter.enabled:
        return Folding(True, "")
    now = time.time() if now is None else now
    window = int(now) // 60 * 60
    key = f"refused:{source}"[:200]
    count = limiter.count(key, window, 60)
    notes = []
    if count == 1:
        before = limiter.peek(key, window - 60)
        if before > AUDIT_ONE_BY_ONE:
            notes.append(
                f"{before} refused requests from {source} in minute {_minute(window - 60)}"
            )
    if count in _MILESTONES:
        notes.append(f"{count} refused requests from {source} in minute {_minute(window)} so far")
    if count == AUDIT_ONE_BY_ONE + 1:
        notes.append(
            f"more than {AUDIT_ONE_BY_ONE} refused requests from {source} in minute "
            f"{_minute(window)}: further ones are counted, the total follows"
        )
    return Folding(count <= AUDIT_ONE_BY_ONE, "; ".join(notes))


def _minute(window: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(window))
