"""Per-region OMS tariffs: shipped defaults, and the region admin's price list on top.

A tariff is what the territorial fund pays for one unit of a service in a region.
The defaults are the nomenclature's base tariff times the region's coefficient
(``COEFFICIENTS``: the demo regions; any other region pays the base).  A region admin's
price is a FHIR ``ChargeItemDefinition`` (id ``tariff-<region>-<code>``, ``jurisdiction``
= the region, ``code`` = the service, one base ``priceComponent``) so that other systems
read the same price list over the API and every change keeps its version history.

A line fixes its price when it is generated: changing the price list later does not
rewrite what was already billed (a new tariff applies to services rendered after it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import Engine

from medcard import clock
from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.billing import nomenclature
from medcard.billing.model import BillingError, money
from medcard.corrections.acting import acting, reader
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.terminology import reference as cat

COEFFICIENTS: Final[dict[str, Decimal]] = {"77": Decimal("1.00"), "78": Decimal("0.93")}
REGION_SYSTEM: Final = cat.REGION_SYSTEM
MAX_TARIFF: Final = Decimal("10000000")
CENT: Final = Decimal("0.01")


def tariff_id(region: str, code: str) -> str:
    return "tariff-" + re.sub(r"[^A-Za-z0-9-]", "-", f"{region}-{code}")


def default_tariff(region: str, code: str) -> Decimal | None:
    service = nomenclature.get(code)
    if service is None:
        return None
    coefficient = COEFFICIENTS.get(region, Decimal("1.00"))
    return (service.base_tariff * coefficient).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class Tariff:
    code: str
    title: str
    price: Decimal
    default: Decimal
    version: int  # 0: the shipped default, no price list entry yet

    @property
    def changed(self) -> bool:
        return self.version > 0 and self.price != self.default


def _amount(definition: dict[str, Any]) -> Decimal | None:
    for group in definition.get("propertyGroup") or []:
        for comp in group.get("priceComponent") or []:
            if comp.get("type") == "base" and isinstance(comp.get("amount"), dict):
                try:
                    return Decimal(str(comp["amount"].get("value"))).quantize(CENT)
                except InvalidOperation:
                    return None
    return None


class PriceList:
    """A region's tariffs, read once (generation prices many lines against one list)."""

    def __init__(self, repo: Repository, region: str) -> None:
        self.region = region
        self.overrides: dict[str, tuple[Decimal, int]] = {}
        found = repo.search(
            parse(
                "ChargeItemDefinition",
                [("jurisdiction", f"{REGION_SYSTEM}|{region}"), ("status", "active")],
                default_count=1000,
                max_count=1000,
            )
        ).matches
        for m in found:
            res = m.json()
            amount = _amount(res)
            codes = [str(c.get("code", "")) for c in (res.get("code") or {}).get("coding") or []]
            if amount is not None and codes:
                self.overrides[codes[0]] = (amount, m.version_id)

    def price(self, code: str) -> Decimal | None:
        if code in self.overrides:
            return self.overrides[code][0]
        return default_tariff(self.region, code)

    def tariffs(self) -> list[Tariff]:
        out = []
        for code, service in nomenclature.services().items():
            default = default_tariff(self.region, code) or Decimal(0)
            price, version = self.overrides.get(code, (default, 0))
            out.append(Tariff(code, service.title, price, default, version))
        return out


def price_list(engine: Engine, region: str) -> PriceList:
    repo = Repository(engine, AccessContext.system("system:billing", purpose="tariffs"))
    return PriceList(repo, region)


def parse_price(text: str) -> Decimal:
    try:
        value = Decimal((text or "").strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise BillingError(422, "bill_err_price", "The price is not a number") from None
    if not value.is_finite() or value <= 0 or value > MAX_TARIFF:
        raise BillingError(422, "bill_err_price", "The price is a positive amount in roubles")
    if value != value.quantize(CENT):
        raise BillingError(422, "bill_err_price", "At most two decimals (kopecks)")
    return value.quantize(CENT)


def admin_region(ctx: AccessContext, region: str) -> str:
    """The region a region admin may price: their own (a region-less account: none)."""
    if ctx.role != Role.REGION_ADMIN:
        raise BillingError(403, "bill_err_not_region_admin", "Only a region admin sets tariffs")
    if not region:
        raise BillingError(403, "bill_err_no_region", "Your account names no region")
    return region


def set_tariffs(
    engine: Engine, ctx: AccessContext, region: str, changes: dict[str, str]
) -> list[str]:
    """Write the admin's prices (code -> text) in one transaction; all or nothing.

    Returns the codes whose price changed.  The service writes on the admin's behalf
    (region admins do not write clinical-billing resources through the gate), with the
    admin as the audit actor.
    """
    region = admin_region(ctx, region)
    parsed: dict[str, Decimal] = {}
    for code, text in changes.items():
        if nomenclature.get(code) is None:
            raise BillingError(422, "bill_err_unknown_code", f"Unknown service code {code[:40]}")
        parsed[code] = parse_price(text)
    sys = reader(engine, ctx, "tariffs")
    try:
        current = PriceList(sys, region)
    finally:
        sys.close()
    changed = [c for c, v in parsed.items() if current.price(c) != v]
    if not changed:
        return []
    with acting(engine, ctx, f"tariffs of region {region}") as svc:
        for code in changed:
            service = nomenclature.get(code)
            assert service is not None
            rid = tariff_id(region, code)
            svc.update(
                "ChargeItemDefinition",
                rid,
                {
                    "resourceType": "ChargeItemDefinition",
                    "id": rid,
                    "url": f"{cat.MEDCARD_FHIR_BASE}/ChargeItemDefinition/{rid}",
                    "title": f"Тариф ОМС, регион {region}: {code} {service.title}"[:250],
                    "status": "active",
                    "date": clock.now().isoformat(timespec="seconds"),
                    "publisher": ctx.actor,
                    "jurisdiction": [{"coding": [{"system": REGION_SYSTEM, "code": region}]}],
                    "code": service.codeable(),
                    "propertyGroup": [
                        {"priceComponent": [{"type": "base", "amount": money(parsed[code])}]}
                    ],
                },
            )
    return changed


__all__ = [
    "COEFFICIENTS",
    "PriceList",
    "Tariff",
    "default_tariff",
    "parse_price",
    "price_list",
    "set_tariffs",
    "tariff_id",
]
