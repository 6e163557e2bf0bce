"""Files a patient attaches to a report: a few documents or photos, checked by content.

The declared type is not trusted: the first bytes must say PDF, JPEG or PNG, and the
declared type must agree.  Stored as a ``Binary`` whose ``securityContext`` is the
patient, so it is filed in their card and readable only by whoever may read the report.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final

from medcard.corrections.acting import ReportError

MAX_FILES: Final = 5
MAX_BYTES: Final = 5 * 1024 * 1024
SIGNATURES: Final = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


def sniff(data: bytes) -> str:
    for content_type, magics in SIGNATURES.items():
        if any(data.startswith(m) for m in magics):
            return content_type
    return ""


def check(uploads: list[Upload]) -> list[Upload]:
    """The uploads to keep (empty file fields dropped), or a refusal naming the file."""
    kept = [u for u in uploads if u.filename or u.data]
    if len(kept) > MAX_FILES:
        raise ReportError(422, "corr_err_files_count", f"At most {MAX_FILES} files per report")
    for u in kept:
        if not u.data:
            raise ReportError(422, "corr_err_file_empty", f"'{u.filename}' is empty")
        if len(u.data) > MAX_BYTES:
            raise ReportError(
                422, "corr_err_file_size", f"'{u.filename}' is larger than {MAX_BYTES // 2**20} MiB"
            )
        actual = sniff(u.data)
        declared = u.content_type.split(";")[0].strip().lower()
        if not actual or (declared not in ("", "application/octet-stream", actual)):
            raise ReportError(
                422,
                "corr_err_file_type",
                f"'{u.filename}' is not a PDF, JPEG or PNG file",
            )
    return kept


def binary(upload: Upload, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "contentType": sniff(upload.data),
        "securityContext": {"reference": f"Patient/{patient_id}"},
        "data": base64.b64encode(upload.data).decode("ascii"),
    }


def safe_name(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = "".join(c for c in name if c.isprintable() and c not in '"<>|:*?')
    return cleaned[:120] or "file"
