#!/usr/bin/env bash
# README command 1: set up, load demo data into the embedded SQLite store, serve, print the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/medcard serve --demo "$@"
