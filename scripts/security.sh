#!/usr/bin/env bash
# Dependency and code security checks; scripts/test.sh (CI) runs both.
#   scripts/security.sh [bandit|pip-audit|all]
# bandit: medium severity and confidence or worse fails (config: [tool.bandit] in
# pyproject.toml).  pip-audit: a known vulnerability fails; when its vulnerability
# service cannot be reached (no package could be audited) the step is SKIPPED, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

if [[ $what == all || $what == bandit ]]; then
  echo "== bandit"
  .venv/bin/bandit -q -c pyproject.toml -r src reliability \
    --severity-level medium --confidence-level medium
  echo "bandit: no medium or high findings"
fi

if [[ $what == all || $what == pip-audit ]]; then
  echo "== pip-audit"
  report=$(mktemp)
  trap 'rm -f "$report"' EXIT
  set +e
  timeout 300 .venv/bin/pip-audit --local --format json --progress-spinner off -o "$report" 2>/dev/null
  rc=$?
  set -e
  .venv/bin/python - "$report" "$rc" <<'PYEOF'
import json, sys

path, rc = sys.argv[1], int(sys.argv[2])
try:
    deps = json.load(open(path)).get("dependencies", [])
except (OSError, ValueError):
    deps = []
audited = [d for d in deps if "skip_reason" not in d]
vulnerable = [d for d in audited if d.get("vulns")]
if not audited:
    bar = "!" * 78
    print(f"{bar}\n!!  pip-audit SKIPPED: its vulnerability service could not be reached"
          f" (0 of {len(deps)} packages audited, exit {rc}).\n!!  Dependencies were NOT checked"
          f" for known vulnerabilities on this machine.\n{bar}")
    sys.exit(0)
for d in vulnerable:
    ids = ", ".join(v["id"] for v in d["vulns"])
    print(f"VULNERABLE {d['name']} {d['version']}: {ids}")
print(f"pip-audit: {len(audited)} packages audited, {len(vulnerable)} with known vulnerabilities")
sys.exit(1 if vulnerable else 0)
PYEOF
fi
