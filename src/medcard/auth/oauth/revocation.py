"""Is this access token revoked?  Asked by the FHIR endpoint on every request.

Access tokens are self-contained JWTs, so revocation needs a look-up: the token's
``jti`` in ``oauth_tokens``.  Answers are cached in-process for at most ``TTL_S``
seconds, so a token in steady use costs one primary-key look-up per five seconds, and
a revocation made in another worker process takes effect within that time (at once
in the process that revoked it, which forgets its cached answer).

Tokens minted outside OAuth (``medcard token``) have no row and are never revoked here.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select

from medcard.db.tables import oauth_tokens

TTL_S = 5.0
_MAX_ENTRIES = 50_000
_cache: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


def is_revoked(engine: Engine, jti: str) -> bool:
    if not jti:
        return False
    now = time.monotonic()
    hit = _cache.get(jti)
    if hit is not None and hit[0] > now:
        return hit[1]
    with engine.connect() as conn:
        revoked = conn.execute(
            select(oauth_tokens.c.revoked).where(
                oauth_tokens.c.token_hash == jti, oauth_tokens.c.kind == "access"
            )
        ).scalar()
    answer = bool(revoked)
    with _lock:
        if len(_cache) >= _MAX_ENTRIES:
            for key in [k for k, (until, _) in _cache.items() if until <= now] or list(_cache):
                del _cache[key]
        _cache[jti] = (now + TTL_S, answer)
    return answer


def forget(jtis: Iterable[str]) -> None:
    """Drop cached answers for tokens just revoked in this process."""
    with _lock:
        for jti in jtis:
            _cache.pop(jti, None)


def jti_of(token: str) -> str:
    """The ``jti`` claim of a JWT whose signature was already verified; '' if none."""
    jti = unverified_claims(token).get("jti")
    return jti if isinstance(jti, str) else ""


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims WITHOUT checking the signature: only for tokens already verified
    (or just minted) by this server."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}
