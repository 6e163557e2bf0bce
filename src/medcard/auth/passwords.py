"""Password hashing (argon2id) and the password policy.

Parameters follow RFC 9106's second recommended option (t=3, m=64 MiB, p=4), which
is also argon2-cffi's default profile; hashes made with older parameters are
re-hashed on the next successful login (:func:`needs_rehash`).  An unknown login is
answered after verifying against a dummy hash, so timing does not tell whether an
account exists.
"""

from __future__ import annotations

import contextlib

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work one request can ask for

HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4, type=Type.ID)


_RULES = {
    "password_too_short": f"the password must be at least {MIN_LENGTH} characters long",
    "password_too_long": f"the password must be at most {MAX_LENGTH} characters long",
    "password_is_login": "the password must not be the same as the login",
}


class PasswordPolicyError(ValueError):
    """The new password breaks the policy; ``code`` names the rule (a catalogue key)."""

    def __init__(self, code: str) -> None:
        super().__init__(_RULES.get(code, code))
        self.code = code


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when the password matches; never raises for a wrong or corrupt hash."""
    if len(password) > MAX_LENGTH:
        burn_time()
        return False
    try:
        return HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


_dummy_hashes: dict[tuple[int, int, int], str] = {}


def _dummy_hash() -> str:
    """A hash with the current parameters, so checking it costs what a real check does."""
    key = (HASHER.time_cost, HASHER.memory_cost, HASHER.parallelism)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = HASHER.hash("medcard: no such account")
    return _dummy_hashes[key]


def burn_time() -> None:
    """Spend what a real verification costs, for logins that have no hash to check."""
    with contextlib.suppress(VerifyMismatchError):
        HASHER.verify(_dummy_hash(), "not the dummy password")


def check_policy(password: str, login: str) -> None:
    """Raise :class:`PasswordPolicyError` unless the password may be set for this login."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError("password_too_short")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError("password_too_long")
    if password.strip().casefold() == login.strip().casefold():
        raise PasswordPolicyError("password_is_login")
