#!/usr/bin/env bash
# Create .venv and install medcard into it (with test tools when given "test").
# Works on a fresh Debian/Ubuntu with Python 3.11+; installs python3-venv via apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "medcard needs Python 3.11 or newer (found: $("$PY" --version 2>&1 || echo none))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "python3-venv is missing; installing it with apt-get" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
  # tests/sso start a real OpenID Connect provider (npm oidc-provider): Node.js 18+ and npm.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "Node.js or npm is missing; installing them with apt-get" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nodejs npm >/dev/null
  fi
  # tests/deploy run the production front (deploy/nginx) before a live server.
  if [ ! -x /usr/sbin/nginx ]; then
    echo "nginx is missing; installing it with apt-get" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nginx >/dev/null
  fi
  # tests/browser drive Debian's Chromium through Playwright (its own downloads fail here).
  if [ ! -x /usr/bin/chromium ]; then
    echo "chromium is missing; installing it with apt-get" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
  fi
else
  .venv/bin/python -m pip install -q -e .
fi
