"""The extract as people read it: the card's sections (grouped by ``medcard.records``)
laid out as an A4 PDF with the patient's identifiers, the period, the issuing system, a
QR code and the verification code on every page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from medcard.audit.reports import human_name
from medcard.extracts import verification
from medcard.extracts.model import is_extract
from medcard.identifiers import ENP_SYSTEM, SNILS_SYSTEM, format_snils
from medcard.pdf import DocumentPdf, qr_png
from medcard.records import SECTION_BY_KEY, Card, Entry, Section, label, ru_date, value_text
from medcard.ru_dates import Times

TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "ru": {
        "title": "Выписка из электронной медицинской карты",
        "issued": "Дата выдачи: {date}",
        "system": "Выдана системой: {system}",
        "source": "Сведения получены из электронной медицинской карты пациента на момент выдачи.",
        "patient": "Пациент",
        "birth": "Дата рождения",
        "gender": "Пол",
        "snils": "СНИЛС",
        "enp": "Полис ОМС (ЕНП)",
        "card_id": "Номер карты",
        "period": "Период",
        "all_time": "за всё время",
        "from_to": "с {start} по {end}",
        "from": "с {start}",
        "to": "по {end}",
        "sections": "Разделы",
        "none": "За выбранный период записей нет.",
        "entries": "записей: {n}",
        "verify": (
            "Подлинность выписки можно проверить по коду {code} на странице {url} "
            "или по QR-коду: страница покажет дату выдачи и разделы, а загруженный файл "
            "сверит побайтно."
        ),
        "footer": "Выписка {code} · проверка подлинности: {url}",
        "page": "Страница {page} из {pages}",
        "qr_caption": "Код {code}",
        "male": "мужской",
        "female": "женский",
        "other": "иной",
        "unknown": "не указан",
    },
    "en": {
        "title": "Extract from the electronic medical record",
        "issued": "Issued on: {date}",
        "system": "Issued by: {system}",
        "source": "Taken from the patient's electronic medical record at the time of issue.",
        "patient": "Patient",
        "birth": "Date of birth",
        "gender": "Sex",
        "snils": "SNILS",
        "enp": "Health insurance (ENP)",
        "card_id": "Record number",
        "period": "Period",
        "all_time": "all time",
        "from_to": "from {start} to {end}",
        "from": "from {start}",
        "to": "until {end}",
        "sections": "Sections",
        "none": "No entries in the chosen period.",
        "entries": "entries: {n}",
        "verify": (
            "Check this extract is genuine with the code {code} at {url} or by the QR "
            "code: the page shows the date of issue and the sections, and compares an "
            "uploaded file byte for byte."
        ),
        "footer": "Extract {code} · check it at {url}",
        "page": "Page {page} of {pages}",
        "qr_caption": "Code {code}",
        "male": "male",
        "female": "female",
        "other": "other",
        "unknown": "not stated",
    },
}


@dataclass(frozen=True)
class Period:
    start: dt.date | None = None
    end: dt.date | None = None

    def contains(self, day: str) -> bool:
        """Undated entries (a diagnosis without onset) are always in; partial dates too."""
        if len(day) < 10:
            return True
        if self.start is not None and day < self.start.isoformat():
            return False
        return not (self.end is not None and day > self.end.isoformat())

    def text(self, lang: str) -> str:
        t = TEXTS[text_lang(lang)]
        start = ru_date(self.start.isoformat()) if self.start else ""
        end = ru_date(self.end.isoformat()) if self.end else ""
        if start and end:
            return t["from_to"].format(start=start, end=end)
        if start:
            return t["from"].format(start=start)
        if end:
            return t["to"].format(end=end)
        return t["all_time"]


@dataclass(frozen=True)
class Extract:
    """Everything the PDF and the Bundle are made of."""

    code: str
    issued: dt.datetime
    lang: str
    base_url: str
    system_name: str
    patient: Mapping[str, Any]
    period: Period
    sections: list[tuple[Section, list[Entry]]]
    # The patient's region's zone (issue 14: times a person reads are in it, named)
    times: Times = field(default_factory=Times)

    @property
    def verify_page(self) -> str:
        return f"{self.base_url}/verify"

    @property
    def verify_url(self) -> str:
        return f"{self.base_url}/verify/{self.code}"

    @property
    def entry_count(self) -> int:
        return sum(1 + len(e.children) for _, entries in self.sections for e in entries)


def text_lang(lang: str) -> str:
    return "en" if lang == "en" else "ru"


def select(
    card: Card, section_keys: Iterable[str], period: Period, *, exclude: Iterable[str] = ()
) -> list[tuple[Section, list[Entry]]]:
    """The chosen sections, in the card's order, with the entries of the period (newest
    first); earlier extracts are not part of the record and never appear in one."""
    skip = set(exclude)
    chosen = set(section_keys)
    out = []
    for key, section in SECTION_BY_KEY.items():
        if key not in chosen:
            continue
        entries = [
            e
            for e in card.section(key)
            if period.contains(e.day) and e.ref not in skip and not is_extract(e.resource)
        ]
        out.append((section, entries))
    return out


def _identifier(patient: Mapping[str, Any], system: str) -> str:
    for ident in patient.get("identifier") or []:
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return ""


def _entry_lines(entry: Entry, lang: str) -> list[str]:
    lines = []
    source = " · ".join(x for x in (entry.organization, entry.practitioner) if x)
    if source:
        lines.append(source)
    for key, value in entry.details:
        if not value or key in ("kind", "period") or value == entry.title:
            continue
        lines.append(f"{label(key, lang)}: {value_text(value, lang)}")
    return lines


def _child_line(child: Entry, lang: str) -> str:
    details = dict(child.details)
    parts = [child.title]
    if details.get("value"):
        parts.append(str(details["value"]))
    if details.get("reference_range"):
        parts.append(f"{label('reference_range', lang)} {details['reference_range']}")
    if child.flag and child.flag != "N":
        parts.append(value_text(f"flag_{child.flag}", lang))
    return " — ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")


def render_pdf(extract: Extract) -> bytes:
    lang = text_lang(extract.lang)
    t = TEXTS[lang]
    code = verification.pretty(extract.code)
    name = human_name(dict(extract.patient)) or "—"
    pdf = DocumentPdf(
        running_title=f"{t['title']} · {name} · {code}",
        footer_note=t["footer"].format(code=code, url=extract.verify_page),
        page_label=t["page"],
    )
    pdf.stamp_metadata(
        title=f"{t['title']} {code}",
        subject=t["title"],
        keywords=f"{verification.KEYWORD_PREFIX}{extract.code}",
        created=extract.issued,
    )
    pdf.add_page()
    shown = Times(extract.times.zone, "en" if lang == "en" else "ru").when(extract.issued)
    pdf.title_block(
        t["title"],
        [
            t["issued"].format(date=shown),
            t["system"].format(system=f"{extract.system_name} ({extract.base_url})"),
            t["source"],
        ],
        qr_png(extract.verify_url),
        t["qr_caption"].format(code=code),
    )
    patient = extract.patient
    snils = _identifier(patient, SNILS_SYSTEM)
    gender = str(patient.get("gender") or "unknown")
    pdf.facts(
        [
            (t["patient"], name),
            (t["birth"], ru_date(str(patient.get("birthDate") or ""))),
            (t["gender"], t.get(gender, t["unknown"])),
            (t["snils"], format_snils(snils) if snils else ""),
            (t["enp"], _identifier(patient, ENP_SYSTEM)),
            (t["card_id"], str(patient.get("id", ""))),
            (t["period"], extract.period.text(lang)),
            (t["sections"], ", ".join(s.title(lang) for s, _ in extract.sections)),
        ]
    )
    for section, entries in extract.sections:
        pdf.heading(section.title(lang), t["entries"].format(n=len(entries)))
        if not entries:
            pdf.paragraph(t["none"], muted=True)
            continue
        for entry in entries:
            pdf.entry(
                ru_date(entry.day) if entry.day else "—", entry.title, _entry_lines(entry, lang)
            )
            for child in entry.children:
                pdf.entry(
                    ru_date(child.day) if child.day and child.day != entry.day else "",
                    _child_line(child, lang),
                    [],
                    indent=8,
                    strong=False,
                )
    pdf.ln(4)
    pdf.paragraph(t["verify"].format(code=code, url=extract.verify_page), 8.5, muted=True)
    return pdf.render()
