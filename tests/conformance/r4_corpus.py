"""Where the official R4 4.0.1 examples are (../shared/data/fhir-r4-examples, issue 21)."""

from __future__ import annotations

import os
from pathlib import Path

TARBALL = "hl7.fhir.r4.examples-4.0.1.tar.xz"


def corpus_tarball() -> Path | None:
    """The tarball in $MEDCARD_R4_EXAMPLES, else in the nearest shared/data/fhir-r4-examples
    above this file (the worktrees' ../shared); None when neither has it."""
    given = os.environ.get("MEDCARD_R4_EXAMPLES")
    candidates = [Path(given)] if given else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "data" / "fhir-r4-examples" for p in here.parents]
    return next((c / TARBALL for c in candidates if (c / TARBALL).is_file()), None)
