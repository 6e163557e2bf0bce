"""Bearer tokens: ES256 JWTs signed by the server's own key.

The key is generated into the data directory on first start (readable by the owner
only).  A token names its actor, SMART scopes and, for patient launches, the patient
compartments it is limited to.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes

if TYPE_CHECKING:
    from medcard.auth.epochs import AccountEpochs

ALGORITHM = "ES256"


class TokenError(Exception):
    """The token is missing, malformed, forged or expired."""


def load_or_create_key(path: Path) -> ECKey:
    if path.exists():
        return ECKey.import_key(json.loads(path.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ECKey.generate_key("P-256", parameters={"kid": secrets.token_hex(8), "use": "sig"})
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(key.as_dict(private=True), f)
    tmp.replace(path)  # atomic: two processes starting together end up with one key
    return ECKey.import_key(json.loads(path.read_text()))


@dataclass(frozen=True)
class TokenIssuer:
    key: ECKey
    issuer: str = "medcard"
    epochs: AccountEpochs | None = None  # issue 14: account-wide revocation (auth/epochs.py)

    def mint(
        self,
        subject: str,
        scope: str,
        *,
        patient: str | None = None,
        patients: list[str] | None = None,
        client_id: str = "cli",
        lifetime: int = 3600,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(12),
            "scope": scope,
            "client_id": client_id,
        }
        if patient:
            claims["patient"] = patient
        if patients:
            claims["patients"] = patients
        claims.update(extra or {})
        header = {"alg": ALGORITHM, "kid": self.key.kid}
        return jwt.encode(header, claims, self.key, algorithms=[ALGORITHM])

    def verify(self, token: str, issuers: tuple[str, ...] = ()) -> dict[str, Any]:
        """Check signature and claims; ``iss`` is ours (configured) or one of ``issuers``
        (the server's public base URL, which OAuth-issued tokens carry: issue 22)."""
        try:
            decoded = jwt.decode(token, self.key, algorithms=[ALGORITHM])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "values": [self.issuer, *issuers]},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise TokenError(_reason(exc)) from None
        return dict(decoded.claims)

    def context(self, token: str, issuers: tuple[str, ...] = ()) -> AccessContext:
        claims = self.verify(token, issuers)
        check_account_epoch(claims, self.epochs)
        patients = set(claims.get("patients") or [])
        if claims.get("patient"):
            patients.add(str(claims["patient"]))
        role = None
        if claims.get("role") is not None:
            try:
                role = Role(str(claims["role"]))
            except ValueError:
                raise TokenError(
                    f"The access token names an unknown role '{claims['role']}'"
                ) from None
        actor = str(claims["sub"])
        refuse_contradictions(actor, role, bool(patients))
        orgs = claims.get("orgs") or []
        return AccessContext(
            actor=actor,
            scopes=Scopes.parse(str(claims.get("scope", ""))),
            client_id=str(claims.get("client_id", "")),
            patient_ids=frozenset(patients),
            role=role,
            organizations=frozenset(str(o) for o in orgs if isinstance(o, str)),
            account_id=str(claims.get("account", "")),
        )


# Subjects that can only be one kind of caller.  A staff member's token names their
# Practitioner (or their account); a patient's names their Patient.
_STAFF_ONLY = ("Practitioner/", "PractitionerRole/", "Organization/")
_NOT_A_PATIENT = ("Practitioner/", "PractitionerRole/", "Organization/", "Client/", "system:")


def refuse_contradictions(actor: str, role: Role | None, for_patient: bool = False) -> None:
    """A token whose claims disagree about who the caller is is no proof of anyone
    (issue 17): a role claim may narrow what the subject allows, never change it."""
    if role == Role.SYSTEM and for_patient:
        raise TokenError("The access token's role is 'system' but it carries a patient context")
    if actor.startswith("Patient/") and role not in (None, Role.PATIENT):
        raise TokenError(f"The access token's subject is a patient but its role is '{role}'")
    if role == Role.PATIENT and actor.startswith(_NOT_A_PATIENT):
        raise TokenError("The access token's role is 'patient' but its subject is not a patient")
    if role in (None, Role.SYSTEM) and actor.startswith(_STAFF_ONLY):
        raise TokenError("The access token's subject is a member of staff but it names no role")


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "expired" in text.lower() or "exp" in text.lower():
        return "The access token has expired"
    if "signature" in text.lower():
        return "The access token signature is not valid"
    return f"The access token is not valid ({text})"


def check_account_epoch(claims: dict[str, Any], epochs: AccountEpochs | None) -> None:
    """Refuse a token of an account that has since signed out, been deactivated, or had
    its password or role changed (issue 14; the epoch is cached briefly per process)."""
    account = claims.get("account")
    if epochs is None or not isinstance(account, str) or not account:
        return
    minted = claims.get("rev", 0)
    if not isinstance(minted, int) or epochs.revoked(account, minted):
        raise TokenError("The access token has been revoked")
