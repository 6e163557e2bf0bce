#!/usr/bin/env bash
# The reliability battery's long form (issue 8): 200+ server kills and 1,000+ Bundles on
# SQLite and on a private PostgreSQL, database faults, 100,000+ fuzzed requests,
# 30 minutes at 200 users; writes RELIABILITY.md with the figures and the date.
# Takes about 50 minutes.  Options go to `python -m reliability run`, e.g. --only load.
# The short forms run with the test suite (tests/reliability, marker "reliability").
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || ./scripts/setup.sh test
exec nice -n 5 .venv/bin/python -m reliability run --long "$@"
