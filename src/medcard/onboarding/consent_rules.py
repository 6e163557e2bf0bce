"""A Consent that denies the card is refused: the medical card cannot be refused.

Registered into ``medcard.fhir.hooks`` by ``install()`` (run when ``medcard.onboarding``
is imported).  A medical organisation keeps the medical record of everyone it treats
(Federal Law 323-FZ, art. 79); a patient may not opt out of it.  What a person can
refuse or withdraw are things the system honours: the consent to the processing of
personal data for online access (``onboarding/consent.py``, withdrawn by ending its
period) and sharing.  A ``Consent`` whose provision (at any depth) has ``type = deny``
over the card or its entries would be stored and mean nothing, so it is refused with
422 and the rule, on every path that writes (API, transactions, pages, CLI), whoever
writes it.

Consents of another scope stay allowed: an informed refusal of a medical intervention
(scope ``treatment``, 323-FZ art. 20) and a refusal of research use (``research``)
are about treatment and research, not the card.  A deny Consent that is not in force
(``inactive``, ``rejected``, ``entered-in-error``) is allowed, so one accepted before
this rule can still be closed.
"""

from __future__ import annotations

from typing import Any, Final

from medcard.fhir import hooks
from medcard.fhir.outcomes import Issue, unprocessable

RULE: Final = "medcard-card-not-refusable"
SCOPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
OTHER_SCOPES: Final = frozenset({"treatment", "research"})
IN_FORCE: Final = frozenset({"draft", "proposed", "active"})
_MAX_DEPTH: Final = 32

REFUSAL_EN: Final = (
    f"Consent refused (rule {RULE}): a Consent with provision.type 'deny' over the "
    "medical card or its entries cannot be accepted. The card is kept by the medical "
    "organisation as the law requires (Federal Law 323-FZ, art. 79) and cannot be "
    "refused. A patient can withdraw the consent to the processing of personal data for "
    "online access (portal: «Согласие на обработку персональных данных», «Отозвать "
    "согласие») and see who opened the card."
)
REFUSAL_RU: Final = (
    f"Согласие не принято (правило {RULE}): согласие с provision.type = deny на "
    "медицинскую карту или её записи принять нельзя. Медицинскую карту ведёт "
    "медицинская организация, как требует закон (323-ФЗ, ст. 79); отказаться от неё "
    "нельзя. Можно отозвать согласие на обработку персональных данных для доступа к "
    "карте через интернет (портал: «Согласие на обработку персональных данных», "
    "«Отозвать согласие») и посмотреть, кто открывал карту."
)


def _denies(provision: Any, depth: int = 0) -> bool:
    if not isinstance(provision, dict) or depth > _MAX_DEPTH:
        return False
    if provision.get("type") == "deny":
        return True
    nested = provision.get("provision")
    return isinstance(nested, list) and any(_denies(p, depth + 1) for p in nested)


def _scopes(consent: dict[str, Any]) -> set[str]:
    scope = consent.get("scope")
    codings = scope.get("coding") if isinstance(scope, dict) else None
    return {
        str(c.get("code"))
        for c in codings or []
        if isinstance(c, dict) and c.get("system") == SCOPE_SYSTEM and c.get("code")
    }


def denies_the_card(consent: dict[str, Any]) -> bool:
    """A Consent in force that denies (part of) the card."""
    if consent.get("resourceType") != "Consent" or consent.get("status") not in IN_FORCE:
        return False
    scopes = _scopes(consent)
    if scopes and scopes <= OTHER_SCOPES:
        return False
    return _denies(consent.get("provision"))


def check_consent(event: hooks.WriteEvent) -> None:
    if denies_the_card(event.resource):
        raise unprocessable(
            REFUSAL_EN,
            "Consent.provision.type",
            extra=[Issue("information", "business-rule", REFUSAL_RU, ("Consent.provision.type",))],
        )


def install() -> None:
    hooks.register("onboarding.card-not-refusable", check_consent)
