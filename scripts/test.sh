#!/usr/bin/env bash
# README command 2: set up and run every check and the whole test suite.
# The suite runs on SQLite always, and again on PostgreSQL when one is reachable
# (MEDCARD_TEST_PG_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
# MEDCARD_REQUIRE_POSTGRES=1 (CI) makes a missing PostgreSQL a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test
PY=.venv/bin/python
export PYTHONDONTWRITEBYTECODE=1

echo "== ruff"; .venv/bin/ruff check src tests bench scripts reliability
.venv/bin/ruff format --check src tests bench scripts reliability
echo "== mypy"; .venv/bin/mypy
echo "== security: bandit, pip-audit"; ./scripts/security.sh
echo "== migrations: schema matches the models"; $PY scripts/check_migrations.py

PG_URL=${MEDCARD_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
pg_ok=0
if $PY - "$PG_URL" <<'PYEOF'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL not reachable: {exc}", file=sys.stderr)
    sys.exit(1)
PYEOF
then pg_ok=1; fi

echo "== tests on SQLite"
MEDCARD_TEST_DATABASE_URL= $PY -m pytest -q -p no:cacheprovider -n 2 "$@"

if [ "$pg_ok" = 1 ]; then
  echo "== tests on PostgreSQL ($PG_URL)"
  MEDCARD_TEST_DATABASE_URL="$PG_URL" $PY -m pytest -q -p no:cacheprovider -n 2 "$@"
else
  echo
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  echo "!!  PostgreSQL SKIPPED: no server at $PG_URL — only SQLite was tested.   !!"
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  if [ "${MEDCARD_REQUIRE_POSTGRES:-0}" = 1 ]; then
    echo "MEDCARD_REQUIRE_POSTGRES=1: failing." >&2
    exit 1
  fi
fi
