"""The patient's "Services received": lines of a card by period, totals, CSV and PDF.

Read through the patient's own repository (the gate: their compartment and their
dependants').  Totals count what the fund pays: billable lines only; a line flagged
``not-billable`` (no valid policy) is listed with its reason but costs the fund nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from medcard import clock
from medcard.billing.disputes import disputed_lines
from medcard.billing.generate import search_all
from medcard.billing.model import BillingError, Line, read_line
from medcard.corrections.model import Report
from medcard.fhir.store.repository import Repository


@dataclass
class Period:
    start: dt.date | None = None
    end: dt.date | None = None

    @classmethod
    def parse(cls, start: str, end: str) -> Period:
        def day(text: str) -> dt.date | None:
            text = (text or "").strip()
            if not text:
                return None
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                raise BillingError(422, "bill_err_period", "Dates are YYYY-MM-DD") from None

        period = cls(day(start), day(end))
        if period.start and period.end and period.start > period.end:
            raise BillingError(422, "bill_err_period", "The period ends before it starts")
        return period

    def params(self) -> list[tuple[str, str]]:
        out = []
        if self.start:
            out.append(("occurrence", f"ge{self.start.isoformat()}"))
        if self.end:
            out.append(("occurrence", f"le{self.end.isoformat()}"))
        return out


@dataclass
class Listing:
    lines: list[Line]
    by_year: dict[str, Decimal] = field(default_factory=dict)
    by_org: dict[str, Decimal] = field(default_factory=dict)
    total: Decimal = Decimal(0)
    disputes: dict[str, Report] = field(default_factory=dict)  # ChargeItem ref -> report


def patient_lines(
    repo: Repository, pid: str, period: Period, reports: list[Report] | None = None
) -> Listing:
    if pid not in repo.ctx.patient_ids:
        raise BillingError(404, "bill_err_no_card", "Not a card you may open")
    found = search_all(repo, "ChargeItem", [("patient", f"Patient/{pid}"), *period.params()])
    lines = sorted((read_line(m.json()) for m in found), key=lambda x: (x.date, x.id), reverse=True)
    by_year: dict[str, Decimal] = defaultdict(Decimal)
    by_org: dict[str, Decimal] = defaultdict(Decimal)
    total = Decimal(0)
    for line in lines:
        if not line.billable:
            continue
        by_year[line.year] += line.amount
        by_org[line.org_name or line.org_ref] += line.amount
        total += line.amount
    return Listing(
        lines,
        dict(sorted(by_year.items(), reverse=True)),
        dict(sorted(by_org.items(), key=lambda kv: (-kv[1], kv[0]))),
        total,
        disputed_lines(reports or []),
    )


CSV_HEADER = (
    "Дата",
    "Организация",
    "Код услуги",
    "Услуга",
    "Количество",
    "Тариф, руб.",
    "Стоимость для фонда ОМС, руб.",
    "Статус",
)


def to_csv(listing: Listing) -> bytes:
    """UTF-8 with BOM and ``;`` so that a Russian spreadsheet opens it as columns."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in listing.lines:
        writer.writerow(
            (
                line.date,
                _safe(line.org_name),
                line.code,
                _safe(line.title),
                f"{line.quantity.normalize():f}",
                f"{line.unit_price:.2f}",
                f"{line.amount:.2f}" if line.billable else "0.00",
                "оплачивается" if line.billable else f"не выставлена: {line.note}",
            )
        )
    writer.writerow(("Итого", "", "", "", "", "", f"{listing.total:.2f}", ""))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _safe(text: str) -> str:
    """No formula injection when the file is opened in a spreadsheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def rub(value: Decimal) -> str:
    whole = f"{value:,.2f}".replace(",", "\u00a0").replace(".", ",")
    return f"{whole}\u00a0₽"


def to_pdf(listing: Listing, patient: str, period: Period) -> bytes:
    from fpdf.enums import XPos, YPos

    from medcard.pdf.document import DocumentPdf

    title = "Медицинские услуги, оплаченные по полису ОМС"
    pdf = DocumentPdf(running_title=f"{title} — {patient}", footer_note="medcard")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    pdf.multi_cell(0, 7, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 10)
    span = (
        f"{period.start.isoformat() if period.start else '…'} — "
        f"{period.end.isoformat() if period.end else '…'}"
    )
    pdf.multi_cell(
        0,
        6,
        f"Пациент: {patient}\nПериод: {span}\nСформировано: {clock.now().date()}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(2)
    widths = (22, 48, 70, 34)
    pdf.set_font("DejaVu", "B", 9)
    for w, head in zip(widths, ("Дата", "Организация", "Услуга", "Стоимость"), strict=True):
        pdf.cell(w, 6, head, border="B")
    pdf.ln()
    pdf.set_font("DejaVu", "", 8.5)
    for line in listing.lines:
        cost = rub(line.amount) if line.billable else "не выставлена"
        cells = (line.date, line.org_name[:34], f"{line.code} {line.title}"[:58], cost)
        for w, text in zip(widths, cells, strict=True):
            pdf.cell(w, 5.5, text)
        pdf.ln()
    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(0, 6, f"Итого за период: {rub(listing.total)}")
    pdf.ln()
    pdf.set_font("DejaVu", "", 9)
    for year, amount in listing.by_year.items():
        pdf.cell(0, 5, f"{year}: {rub(amount)}")
        pdf.ln()
    for org, amount in listing.by_org.items():
        pdf.multi_cell(0, 5, f"{org}: {rub(amount)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
