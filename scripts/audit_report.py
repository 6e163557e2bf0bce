"""Read a pip-audit JSON report and say what was checked; never a pass for a skipped check.

    python scripts/audit_report.py REPORT.json PIP_AUDIT_EXIT_CODE

pip-audit prints "No known vulnerabilities found" and exits 0 even when it could not
reach its vulnerability service and audited nothing (every dependency carries a
``skip_reason``).  This reads the report instead:

- a known vulnerability: one line per package, exit 1;
- nothing audited: a loud SKIPPED banner, exit 0, or exit 2 when MEDCARD_AUDIT_REQUIRED=1
  (CI with network access sets it, so an audit that did not run fails there);
- some packages not audited: a loud PARTIAL banner naming them (exit 2 when required);
- otherwise: how many packages were audited against how many locked.
"""

from __future__ import annotations

import json
import os
import sys

BAR = "!" * 78


def main(path: str, rc: int) -> int:
    try:
        with open(path, encoding="utf-8") as fh:
            deps = json.load(fh).get("dependencies", [])
    except (OSError, ValueError):
        deps = []
    required = os.environ.get("MEDCARD_AUDIT_REQUIRED") == "1"
    audited = [d for d in deps if "skip_reason" not in d]
    skipped = [d for d in deps if "skip_reason" in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for d in vulnerable:
        ids = ", ".join(v["id"] for v in d["vulns"])
        print(f"VULNERABLE {d['name']} {d.get('version', '')}: {ids}")
    if not audited:
        print(
            f"{BAR}\n!!  pip-audit SKIPPED: its vulnerability service could not be reached"
            f" (0 of {len(deps)} packages audited, exit {rc}).\n!!  Dependencies were NOT"
            f" checked for known vulnerabilities on this machine.\n{BAR}"
        )
        return 2 if required else 0
    if skipped:
        names = ", ".join(sorted(d["name"] for d in skipped))
        print(
            f"{BAR}\n!!  pip-audit PARTIAL: {len(skipped)} of {len(deps)} packages were NOT"
            f" audited: {names}\n{BAR}"
        )
    print(
        f"pip-audit: {len(audited)} of {len(deps)} locked packages audited,"
        f" {len(vulnerable)} with known vulnerabilities"
    )
    if vulnerable:
        return 1
    return 2 if skipped and required else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
