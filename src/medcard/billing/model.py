"""A billed service line is a FHIR ``ChargeItem`` (see docs/adr/0006-billing.md).

* ``id`` = ``oms-`` + a hash of (source entry, service code): one line per entry and
  service, so generating twice (or two generators racing) cannot bill twice;
  ``identifier`` carries the same key readably (``Encounter/x#B01.047.001``);
* ``status``: ``billable`` (a valid OMS policy covers the date), ``not-billable`` (no
  valid policy: flagged for the registrar with the reason in ``note``),
  ``entered-in-error`` (voided: the patient's dispute was accepted, or its entry left
  the card);
* ``code`` (nomenclature or local case code), ``quantity``, ``occurrenceDateTime``,
  ``performingOrganization``, ``subject`` (with the patient's name and ENP as display,
  which is all an insurer learns of the patient);
* ``priceOverride`` = the line's cost to the fund (tariff × quantity, fixed when billed;
  R4 has no total-price element), the tariff in the ``unit-price`` extension;
* ``account`` = ``Account/oms-<insurer>``: the insurer's OMS ledger, which is how the
  gate finds the lines billed to an insurer (an indexed reference) — R4 ChargeItem has
  no payor; the ``coverage`` extension names the policy;
* ``context`` = the encounter; ``service`` = the clinical entry R4 allows there
  (Immunization, DiagnosticReport, Observation, ImagingStudy, Procedure);
  ``supportingInformation`` = every clinical entry the line stands for (what a dispute
  takes out of the card when it is accepted).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from medcard.fhir.outcomes import FhirError
from medcard.terminology import reference as cat

BASE: Final = cat.MEDCARD_FHIR_BASE
LINE_SYSTEM: Final = f"{BASE}/sid/oms-service-line"
INSURER_EXT: Final = f"{BASE}/StructureDefinition/oms-insurer"
COVERAGE_EXT: Final = f"{BASE}/StructureDefinition/oms-coverage"
UNIT_PRICE_EXT: Final = f"{BASE}/StructureDefinition/unit-price"
REGION_EXT: Final = cat.REGION_EXTENSION_URL
CURRENCY: Final = "RUB"
BILLABLE: Final = "billable"
NOT_BILLABLE: Final = "not-billable"
VOIDED: Final = "entered-in-error"


class BillingError(FhirError):
    """A refusal with a page text key (``key``); the API shows ``diagnostics``."""

    def __init__(self, status: int, key: str, message: str) -> None:
        codes = {403: "forbidden", 404: "not-found", 409: "conflict", 422: "business-rule"}
        super().__init__(status, codes.get(status, "invalid"), message)
        self.key = key


def line_key(source: str, code: str) -> str:
    return f"{source}#{code}"


def line_id(source: str, code: str) -> str:
    return "oms-" + hashlib.sha256(line_key(source, code).encode()).hexdigest()[:40]


def account_id(insurer_id: str) -> str:
    return f"oms-{insurer_id}"[:64]


def money(value: Decimal) -> dict[str, Any]:
    return {"value": float(value), "currency": CURRENCY}


def amount_of(value: Any) -> Decimal:
    if not isinstance(value, dict):
        return Decimal(0)
    try:
        return Decimal(str(value.get("value", 0))).quantize(Decimal("0.01"))
    except InvalidOperation:
        return Decimal(0)


def _ref(value: Any) -> str:
    return str(value.get("reference", "")) if isinstance(value, dict) else ""


def _display(value: Any) -> str:
    return str(value.get("display", "")) if isinstance(value, dict) else ""


def _ext(res: dict[str, Any], url: str) -> dict[str, Any]:
    for e in res.get("extension") or []:
        if isinstance(e, dict) and e.get("url") == url:
            return e
    return {}


@dataclass
class Line:
    """A ChargeItem as pages, figures and exports read it."""

    id: str
    version: int
    status: str
    patient_id: str
    patient: str  # display: name and ENP
    date: str  # YYYY-MM-DD of the service
    code: str
    system: str
    title: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # cost to the fund
    org_ref: str
    org_name: str
    insurer_ref: str
    insurer_name: str
    source: str  # the entry the line comes from: "Encounter/x"
    entries: list[str] = field(default_factory=list)  # every clinical entry it stands for
    note: str = ""
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"ChargeItem/{self.id}"

    @property
    def year(self) -> str:
        return self.date[:4]

    @property
    def month(self) -> str:
        return self.date[:7]

    @property
    def billable(self) -> bool:
        return self.status == BILLABLE


def read_line(res: dict[str, Any]) -> Line:
    coding: dict[str, Any] = next(iter((res.get("code") or {}).get("coding") or []), {})
    subject = res.get("subject") or {}
    qty = res.get("quantity") or {}
    try:
        quantity = Decimal(str(qty.get("value", 1)))
    except InvalidOperation:
        quantity = Decimal(0)
    insurer = _ext(res, INSURER_EXT).get("valueReference") or {}
    occurrence = str(res.get("occurrenceDateTime") or "")
    identifier = next(
        (
            str(i.get("value", ""))
            for i in res.get("identifier") or []
            if isinstance(i, dict) and i.get("system") == LINE_SYSTEM
        ),
        "",
    )
    supporting = [_ref(r) for r in res.get("supportingInformation") or [] if _ref(r)]
    return Line(
        id=str(res.get("id", "")),
        version=int((res.get("meta") or {}).get("versionId", "1") or 1),
        status=str(res.get("status", "")),
        patient_id=_ref(subject).removeprefix("Patient/"),
        patient=_display(subject),
        date=occurrence[:10],
        code=str(coding.get("code", "")),
        system=str(coding.get("system", "")),
        title=str(coding.get("display") or (res.get("code") or {}).get("text") or ""),
        quantity=quantity,
        unit_price=amount_of(_ext(res, UNIT_PRICE_EXT).get("valueMoney")),
        amount=amount_of(res.get("priceOverride")),
        org_ref=_ref(res.get("performingOrganization")),
        org_name=_display(res.get("performingOrganization")),
        insurer_ref=_ref(insurer),
        insurer_name=_display(insurer),
        source=identifier.split("#", 1)[0],
        entries=supporting,
        note=" ".join(str(n.get("text", "")) for n in res.get("note") or []),
        resource=res,
    )


def parse_day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None
