"""What every ChargeItem written through the store must satisfy (any path: API, CLI, jobs).

Registered into ``medcard.fhir.hooks``: a live line (not ``entered-in-error``) names a
known service code (nomenclature or the local case list), a patient, a positive
quantity and a non-negative price, and no other line bills the same entry for the same
service (the ``oms-service-line`` identifier).  Voiding a line is always allowed.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from medcard.access.context import AccessContext
from medcard.billing import nomenclature
from medcard.billing.model import LINE_SYSTEM, VOIDED, BillingError
from medcard.fhir import hooks
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def check_line(res: dict[str, Any]) -> None:
    if res.get("status") == VOIDED:
        return
    codings = [c for c in (res.get("code") or {}).get("coding") or [] if isinstance(c, dict)]
    known = [
        c
        for c in codings
        if c.get("system") in nomenclature.SYSTEMS.values()
        and (svc := nomenclature.get(str(c.get("code", "")))) is not None
        and svc.system == c.get("system")
    ]
    if not known:
        shown = ", ".join(f"{c.get('system', '')}|{c.get('code', '')}" for c in codings)[:200]
        raise BillingError(
            422,
            "bill_err_unknown_code",
            f"Unknown service code ({shown or 'none'}): use the nomenclature of medical "
            "services (804н) or medcard's OMS case list",
        )
    subject = str((res.get("subject") or {}).get("reference", ""))
    if not subject.startswith("Patient/"):
        raise BillingError(422, "bill_err_no_patient", "A service line names the patient")
    qty = res.get("quantity")
    if qty is not None:
        value = _number(qty.get("value") if isinstance(qty, dict) else None)
        if value is None or value <= 0:
            raise BillingError(422, "bill_err_quantity", "The quantity must be positive")
    price = res.get("priceOverride")
    if price is not None:
        value = _number(price.get("value") if isinstance(price, dict) else None)
        if value is None or value < 0:
            raise BillingError(422, "bill_err_price", "The price must not be negative")


def check_duplicate(repo: Repository, res: dict[str, Any]) -> None:
    for ident in res.get("identifier") or []:
        if not isinstance(ident, dict) or ident.get("system") != LINE_SYSTEM:
            continue
        value = str(ident.get("value", ""))
        found = repo.search(
            parse("ChargeItem", [("identifier", f"{LINE_SYSTEM}|{value}"), ("_count", "5")])
        ).matches
        if any(m.id != res.get("id") for m in found):
            raise BillingError(
                409,
                "bill_err_duplicate",
                f"The entry is already billed for this service ({value[:120]})",
            )


def guard(event: hooks.WriteEvent) -> None:
    res = event.resource
    if res.get("resourceType") != "ChargeItem":
        return
    check_line(res)
    if res.get("status") == VOIDED:
        return
    repo = Repository(
        event.engine, AccessContext.system("system:billing", purpose="check service line")
    )
    check_duplicate(repo, res)


def install() -> None:
    hooks.register("billing.lines", guard)
