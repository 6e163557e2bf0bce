"""An insurer's monthly figures: billed, disputed and voided amounts per organisation.

Billed lines are read through the insurer reviewer's own gate (the lines on its OMS
account).  Voided lines have left every view (entered in error), so disputed and voided
amounts are found from the other side: the correction reports owned by the insurer
name the disputed lines, which the service reads by id, voided included.  Amounts are
attributed to the month the service was rendered (the billing period).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from medcard.access.roles import Role
from medcard.billing.generate import search_all
from medcard.billing.model import VOIDED, BillingError, Line, account_id, read_line
from medcard.config import Settings
from medcard.corrections import service
from medcard.corrections.acting import reader
from medcard.corrections.model import Decision, Status
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository


def insurer_orgs(repo: Repository) -> list[str]:
    if repo.ctx.role != Role.REVIEWER or not repo.ctx.organizations:
        raise BillingError(403, "bill_err_not_insurer", "Only an insurer's staff see its billing")
    return sorted(repo.ctx.organizations)


def billed_lines(repo: Repository, month: str = "") -> list[Line]:
    """The lines billed to the caller's insurer (through the gate), newest first."""
    params = [("account", ",".join(f"Account/{account_id(o)}" for o in insurer_orgs(repo)))]
    if month:
        params.append(("occurrence", month))
    lines = [read_line(m.json()) for m in search_all(repo, "ChargeItem", params)]
    return sorted(lines, key=lambda x: (x.date, x.id), reverse=True)


@dataclass
class OrgMonth:
    org_ref: str
    org_name: str
    lines: int = 0
    billed: Decimal = Decimal(0)
    disputed: Decimal = Decimal(0)
    disputed_lines: int = 0
    voided: Decimal = Decimal(0)
    voided_lines: int = 0

    @property
    def net(self) -> Decimal:
        return self.billed - self.voided


@dataclass
class Month:
    month: str
    orgs: list[OrgMonth] = field(default_factory=list)

    @property
    def billed(self) -> Decimal:
        return sum((o.billed for o in self.orgs), Decimal(0))

    @property
    def disputed(self) -> Decimal:
        return sum((o.disputed for o in self.orgs), Decimal(0))

    @property
    def voided(self) -> Decimal:
        return sum((o.voided for o in self.orgs), Decimal(0))


def monthly(repo: Repository, settings: Settings | None = None) -> list[Month]:
    insurer_orgs(repo)
    current = billed_lines(repo)
    seen = {line.id for line in current}
    disputed: dict[str, Line] = {}
    reports = service.queue(repo, settings)
    sys = reader(repo.engine, repo.ctx, "insurer figures")
    sys.include_hidden = True
    try:
        for report in reports:
            if report.status == Status.ESCALATED:
                continue  # counted under the report it moved to
            if report.status == Status.DECIDED and report.decision == Decision.REJECTED:
                pass  # a rejected dispute was still a dispute that month
            for ref in report.entries:
                if not ref.startswith("ChargeItem/") or ref[11:] in disputed:
                    continue
                try:
                    line = read_line(sys.read("ChargeItem", ref[11:]).json())
                except FhirError:
                    continue
                if line.insurer_ref.removeprefix("Organization/") in repo.ctx.organizations:
                    disputed[line.id] = line
    finally:
        sys.close()
    cells: dict[tuple[str, str], OrgMonth] = {}
    for line in [*current, *(x for x in disputed.values() if x.id not in seen)]:
        cell = cells.setdefault(
            (line.month, line.org_ref), OrgMonth(line.org_ref, line.org_name or line.org_ref)
        )
        cell.lines += 1
        cell.billed += line.amount
        if line.id in disputed:
            cell.disputed += line.amount
            cell.disputed_lines += 1
        if line.status == VOIDED:
            cell.voided += line.amount
            cell.voided_lines += 1
    months: dict[str, Month] = defaultdict(lambda: Month(""))
    for (month, _), cell in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[1].org_name)):
        m = months[month]
        m.month = month
        m.orgs.append(cell)
    return [months[k] for k in sorted(months, reverse=True)]
