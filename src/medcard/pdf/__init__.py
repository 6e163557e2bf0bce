"""PDF rendering on fpdf2 (pure Python, no system libraries) with a Cyrillic font shipped
in the repository (DejaVu Sans, see ``fonts/LICENSE-DejaVu.txt``), so a fresh machine
renders Russian text without installing anything.

:class:`DocumentPdf` is a page with the chrome every issued document needs: a running
header, and a footer carrying the verification code, the verification URL and
"page N of M" on every page, so a single page torn out of an extract can still be
checked.  :func:`qr_png` draws the QR code that opens the verification page.
"""

from __future__ import annotations

from medcard.pdf.document import FONT_DIR, DocumentPdf, qr_png

__all__ = ["FONT_DIR", "DocumentPdf", "qr_png"]
