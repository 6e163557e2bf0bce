#!/usr/bin/env bash
# Regenerate requirements.lock: every dependency of medcard and its [test] extra, pinned,
# with the sha256 of every published file (pip install --require-hashes accepts it;
# scripts/security.sh audits it).  Run after changing dependencies in pyproject.toml:
#   scripts/lock.sh            keep the current pins where they still satisfy pyproject
#   scripts/lock.sh --upgrade  move every pin to the newest allowed version
# uv (from PyPI) is installed into .lock-tools/ on first use; the project's .venv and the
# way scripts/setup.sh installs (pip install -e '.[test]') are left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=${UV_VERSION:-0.13.9}
if [ ! -x .lock-tools/bin/uv ]; then
  python3 -m venv .lock-tools
  .lock-tools/bin/python -m pip install -q "uv==$UV_VERSION"
fi
# The machine's wheel directory and file indexes (pip.conf) next to PyPI; unsafe-best-match
# because a package may sit on several of them (the versions are the same files: hashed).
args=(--extra test --generate-hashes --python-version 3.11 --index-strategy unsafe-best-match)
[ -d /opt/wheels ] && args+=(--find-links /opt/wheels)
.lock-tools/bin/uv pip compile -q pyproject.toml "${args[@]}" "$@" \
  --custom-compile-command "scripts/lock.sh" -o requirements.lock
echo "requirements.lock: $(grep -c '^[a-z0-9]' requirements.lock) packages pinned with hashes"
