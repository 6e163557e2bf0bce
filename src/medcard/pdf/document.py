"""A4 document pages with running header and footer, on fpdf2 with DejaVu Sans."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Final

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

FONT_DIR: Final = Path(__file__).parent / "fonts"
FAMILY: Final = "DejaVu"
GREY: Final = (89, 99, 110)
LINE: Final = (208, 215, 222)
ACCENT: Final = (11, 92, 173)


def qr_png(text: str, *, scale: int = 4) -> bytes:
    """A QR code (error correction M: survives a crease or a stamp) as PNG bytes."""
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="png", scale=scale, border=2)
    return out.getvalue()


class DocumentPdf(FPDF):
    """An issued document: header with its title, footer with the verification code and URL.

    ``running_title`` is printed at the top of every page after the first (the first
    page has its own title block); ``footer_note`` (code and where to check it) and the
    page number at the bottom of every page.
    """

    def __init__(
        self,
        *,
        running_title: str,
        footer_note: str,
        page_label: str = "Страница {page} из {pages}",
    ) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.running_title = running_title
        self.footer_note = footer_note
        self.page_label = page_label
        self.add_font(FAMILY, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FAMILY, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(left=18, top=16, right=18)
        self.set_auto_page_break(auto=True, margin=22)
        self.set_creator("medcard")
        self.set_font(FAMILY, "", 10)
        self._widths: dict[tuple[str, str, float], dict[str, float]] = {}

    @property
    def content_width(self) -> float:
        return float(self.w - self.l_margin - self.r_margin)

    # -- page chrome ---------------------------------------------------------------------

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(FAMILY, "", 8)
        self.set_text_color(*GREY)
        self.cell(0, 5, self.running_title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*LINE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(3)
        self.set_text_color(0, 0, 0)
        self.set_font(FAMILY, "", 10)

    def footer(self) -> None:
        self.set_y(-16)
        self.set_draw_color(*LINE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1)
        self.set_font(FAMILY, "", 7.5)
        self.set_text_color(*GREY)
        number = self.page_label.format(page=self.page_no(), pages="{nb}")
        width = self.get_string_width(number) + 2
        self.cell(self.content_width - width, 4, self.footer_note)
        self.cell(width, 4, number, align="R")
        self.set_text_color(0, 0, 0)

    # -- building blocks -----------------------------------------------------------------

    def title_block(self, title: str, lines: list[str], qr: bytes, qr_caption: str) -> None:
        """The first page's title, subtitle lines at the left and the QR code at the right."""
        qr_size = 32.0
        top = self.get_y()
        self.image(io.BytesIO(qr), x=self.w - self.r_margin - qr_size, y=top, w=qr_size)
        self.set_xy(self.w - self.r_margin - qr_size - 4, top + qr_size)
        self.set_font(FAMILY, "B", 8)
        self.cell(qr_size + 4, 4, qr_caption, align="C")
        self.set_xy(self.l_margin, top)
        text_width = self.content_width - qr_size - 6
        self.set_font(FAMILY, "B", 15)
        self.multi_cell(text_width, 7, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        self.ln(1)
        self.set_font(FAMILY, "", 9)
        self.set_text_color(*GREY)
        for line in lines:
            self.multi_cell(text_width, 4.6, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        self.set_text_color(0, 0, 0)
        self.set_y(max(self.get_y(), top + qr_size + 6))

    def facts(self, rows: list[tuple[str, str]], label_width: float = 48) -> None:
        """Label / value rows (the patient's identifiers, the period)."""
        for label, value in rows:
            self.set_font(FAMILY, "", 9)
            self.set_text_color(*GREY)
            self.cell(label_width, 5.2, label)
            self.set_text_color(0, 0, 0)
            self.set_font(FAMILY, "B" if value else "", 10)
            self.multi_cell(
                self.content_width - label_width,
                5.2,
                value or "—",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
                align="L",
            )

    def heading(self, text: str, note: str = "") -> None:
        """A section heading; never left alone at the bottom of a page."""
        if self.get_y() > self.page_break_trigger - 34:
            self.add_page()
        self.ln(3)
        self.set_font(FAMILY, "B", 12)
        self.set_text_color(*ACCENT)
        self.cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*ACCENT)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.set_text_color(0, 0, 0)
        if note:
            self.set_font(FAMILY, "", 9)
            self.set_text_color(*GREY)
            self.cell(0, 5.5, note, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_text_color(0, 0, 0)
        self.ln(1.5)

    def entry(
        self,
        date: str,
        title: str,
        lines: list[str],
        *,
        indent: float = 0,
        date_width: float = 24,
        strong: bool = True,
    ) -> None:
        """One record: its date in a narrow column, the title (bold unless a part of the
        record above it, like a result of a report), details below."""
        if self.get_y() > self.page_break_trigger - 10:
            self.add_page()
        x0 = self.l_margin + indent
        width = self.content_width - indent - date_width
        self.set_x(x0)
        self.set_font(FAMILY, "", 9)
        self.set_text_color(*GREY)
        self.cell(date_width, 5, date)
        self.set_text_color(0, 0, 0)
        self.set_font(FAMILY, "B" if strong else "", 9.5 if strong else 8.5)
        self.wrapped(x0 + date_width, width, 5 if strong else 4.3, title)
        if lines:
            self.set_font(FAMILY, "", 8.5)
            for line in lines:
                self.wrapped(x0 + date_width, width, 4.3, line)
        self.ln(1.2 if strong else 0.3)

    def wrapped(self, x: float, width: float, height: float, text: str) -> None:
        """Left-aligned text wrapped at word boundaries, one ``cell`` per line.

        fpdf2's ``multi_cell`` re-measures the whole line for every character it adds,
        which made a 1,000-entry extract take seconds; words are measured once here.
        """
        for line in self.wrap(text, width - 2 * self.c_margin):
            self.set_x(x)
            self.cell(width, height, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def wrap(self, text: str, width: float) -> list[str]:
        key = (self.font_family, self.font_style, self.font_size_pt)
        cache = self._widths.setdefault(key, {})

        def measure(word: str) -> float:
            w = cache.get(word)
            if w is None:
                w = cache[word] = float(self.get_string_width(word))
            return w

        space = measure(" ")
        out: list[str] = []
        for paragraph in text.splitlines() or [""]:
            line: list[str] = []
            used = 0.0
            for whole in paragraph.split():
                word, w = whole, measure(whole)
                if line and used + space + w <= width:
                    line.append(word)
                    used += space + w
                    continue
                if line:
                    out.append(" ".join(line))
                    line, used = [], 0.0
                while w > width:  # a word longer than the line: break it by characters
                    cut = max(1, int(len(word) * width / w))
                    while cut > 1 and measure(word[:cut]) > width:
                        cut -= 1
                    out.append(word[:cut])
                    word = word[cut:]
                    w = measure(word)
                line, used = [word], w
            out.append(" ".join(line))
        return out

    def paragraph(self, text: str, size: float = 9, *, muted: bool = False) -> None:
        self.set_font(FAMILY, "", size)
        if muted:
            self.set_text_color(*GREY)
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        self.set_text_color(0, 0, 0)

    def stamp_metadata(
        self, *, title: str, subject: str, keywords: str, created: dt.datetime
    ) -> None:
        """Document information: the verification code goes into the keywords, so the
        verification page finds it in an uploaded file without reading the pages."""
        self.set_title(title)
        self.set_subject(subject)
        self.set_keywords(keywords)
        self.set_author("medcard")
        self.set_creation_date(created)

    def render(self) -> bytes:
        return bytes(self.output())
