"""TOTP second factor (RFC 6238: 30-second steps, 6 digits, SHA-1, as authenticator apps expect).

A code is accepted for the current step and one step either side (clock drift), and
only for a step later than the last one accepted for the account, so a code seen
over someone's shoulder cannot be replayed.  The caller stores the returned step
(see ``accounts.accept_totp``).
"""

from __future__ import annotations

import hmac

import pyotp

from medcard import clock

STEP_SECONDS = 30
DIGITS = 6
VALID_WINDOW = 1
ISSUER = "medcard"


def new_secret() -> str:
    """A random 160-bit base32 secret (32 characters), the RFC 4226 recommended size."""
    return str(pyotp.random_base32())


def provisioning_uri(secret: str, login: str, issuer: str = ISSUER) -> str:
    """The otpauth:// URI authenticator apps import (usually shown as a QR code)."""
    return str(pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=issuer))


def current_step() -> int:
    return clock.now_micros() // 1_000_000 // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    """The code for one time step (tests and the demo use it)."""
    return str(pyotp.TOTP(secret).generate_otp(step))


def matching_step(secret: str, code: str, *, after_step: int) -> int | None:
    """The step the code belongs to, if it is valid now and newer than ``after_step``."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = current_step()
    for step in range(now - VALID_WINDOW, now + VALID_WINDOW + 1):
        if step > after_step and hmac.compare_digest(code_at(secret, step), code):
            return step
    return None
