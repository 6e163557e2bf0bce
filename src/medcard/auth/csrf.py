"""CSRF tokens: per session once signed in, double-submit cookie before that.

Signed-in forms carry the session's token (``sessions.csrf``).  Forms shown before
there is a session (login, password reset) would otherwise be open to login CSRF
(an attacker signing the victim into the attacker's account), so they use a
double-submit token: a random value in an HttpOnly cookie, repeated in a hidden
field; a cross-site form can set neither.
"""

from __future__ import annotations

import hmac
import secrets

FIELD = "csrf_token"
HEADER = "x-csrf-token"  # for htmx requests, which send the token as a header
PRESESSION_COOKIE = "medcard_csrf"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given or len(given) > 256:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
