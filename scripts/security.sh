#!/usr/bin/env bash
# Dependency and code security checks; scripts/test.sh (CI) runs both.
#   scripts/security.sh [bandit|pip-audit|all]
# bandit: medium severity and confidence or worse fails (config: [tool.bandit] in
# pyproject.toml).  pip-audit audits requirements.lock: a known vulnerability fails; when
# its vulnerability service cannot be reached (no package could be audited) the step is
# SKIPPED, loudly, and fails only with MEDCARD_AUDIT_REQUIRED=1 (docs/dependency-audit.md).
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
  # The locked dependency set (requirements.lock, from scripts/lock.sh), hashes required,
  # resolved from the lock alone (no pip run, so no installing or network for that).
  echo "== pip-audit (requirements.lock)"
  report=$(mktemp)
  trap 'rm -f "$report"' EXIT
  set +e
  timeout 300 .venv/bin/pip-audit -r requirements.lock --require-hashes --disable-pip \
    --format json --progress-spinner off -o "$report" 2>/dev/null
  rc=$?
  set -e
  # pip-audit says "No known vulnerabilities found" even when it audited nothing: the
  # report decides (SKIPPED / PARTIAL banners; MEDCARD_AUDIT_REQUIRED=1 makes them fail).
  .venv/bin/python scripts/audit_report.py "$report" "$rc"
fi
