"""Getting access to the card: registration with an identity check, SSO with consent.

Two routes lead a person to their card (issue 4):

* registration: an account with a password, an identity check against the Patient
  found by SNILS (``verification``), an access request (``requests``, a FHIR Task)
  approved automatically on a full match or by a registrar;
* national SSO (``auth/sso.py`` links the account at sign-in): consent to the
  processing of personal data (``consent``, a FHIR Consent, revocable), then
  requests for medical documents delivered by a background job (``documents``).

:func:`card_gate` tells the portal where to send a patient who may not see the card
yet.  Nothing here imports the web framework.
"""

from __future__ import annotations

from sqlalchemy import Engine

from medcard.access.roles import Role
from medcard.auth.accounts import Account

ACCESS_PATH = "/access"
CONSENT_PATH = "/access/consent"
SSO_LOGIN_PREFIX = "sso:"


def is_sso(account: Account) -> bool:
    """Accounts made by the national SSO sign-in (``sso:<region>:<sub>``)."""
    return account.login.startswith(SSO_LOGIN_PREFIX)


def card_gate(engine: Engine, account: Account) -> str | None:
    """Where to send a patient who may not open the card yet, or None when they may.

    An account not linked to a card goes to ``/access`` (identity check and request);
    an SSO account without an active consent to ``/access/consent``, and so does any
    account whose consent was given and then revoked.  Staff are not
    gated here: the access policy decides what they see.
    """
    if account.role is not Role.PATIENT:
        return None
    if not account.fhir_ref.startswith("Patient/"):
        return ACCESS_PATH
    from medcard.onboarding import consent

    if is_sso(account):
        if not consent.has_active(engine, account):
            return CONSENT_PATH
        return None
    # A card opened by an access request needs no consent to open, but once the person
    # gave one and withdrew it, the card stays closed until they agree again.
    state = consent.state(engine, account)
    if state.history and not state.given:
        return CONSENT_PATH
    return None


def _install_rules() -> None:
    from medcard.onboarding import consent_rules

    consent_rules.install()  # a deny Consent over the card is refused (every write path)


_install_rules()
