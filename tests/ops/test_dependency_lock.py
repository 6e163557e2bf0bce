"""Issue 14 item 9: the dependency set is pinned with hashes (requirements.lock, from
scripts/lock.sh) and the audit of it never reports a pass for a check that did not run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
REPORT = ROOT / "scripts" / "audit_report.py"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\]+)")


def _locked() -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes) from the lock."""
    out: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line)
        if m:
            current = canonicalize_name(m.group(1))
            out[current] = (m.group(2), [])
        elif current and "--hash=sha256:" in line:
            out[current][1].append(line.split("--hash=sha256:", 1)[1].strip(" \\"))
    return out


def _wanted() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]
    ]


def test_every_dependency_is_pinned_with_hashes_within_pyprojects_ranges() -> None:
    locked = _locked()
    assert len(locked) > len(_wanted())  # the transitive set, not only the direct one
    for req in _wanted():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in requirements.lock: run scripts/lock.sh"
        version, _ = locked[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}=={version} does not satisfy {req}: run scripts/lock.sh"
        )
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name}=={version} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name


def _report(tmp_path: Path, deps: list[dict[str, Any]], *, required: bool = False) -> Any:
    path = tmp_path / "audit.json"
    path.write_text(json.dumps({"dependencies": deps}), encoding="utf-8")
    env = {**os.environ, "MEDCARD_AUDIT_REQUIRED": "1" if required else ""}
    return subprocess.run(
        [sys.executable, str(REPORT), str(path), "0"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


UNREACHABLE = [
    {"name": n, "skip_reason": f"Dependency not found on PyPI and could not be audited: {n}"}
    for n in ("fastapi", "jinja2")
]


@pytest.mark.parametrize("required", [False, True])
def test_an_audit_that_reached_nothing_is_skipped_loudly_never_green(
    tmp_path: Path, required: bool
) -> None:
    done = _report(tmp_path, UNREACHABLE, required=required)
    assert "pip-audit SKIPPED" in done.stdout
    assert "0 of 2 packages audited" in done.stdout
    assert "NOT checked" in done.stdout
    assert "locked packages audited" not in done.stdout  # no summary that reads like a pass
    assert "with known vulnerabilities" not in done.stdout
    assert done.returncode == (2 if required else 0)


def test_an_unreadable_report_is_skipped_too(tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    path.write_text("not json", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(REPORT), str(path), "1"], capture_output=True, text=True, check=False
    )
    assert "pip-audit SKIPPED" in done.stdout


def test_a_known_vulnerability_fails(tmp_path: Path) -> None:
    deps = [
        {"name": "jinja2", "version": "3.0.0", "vulns": [{"id": "GHSA-h5c8-rqwp-cp95"}]},
        {"name": "fastapi", "version": "0.115.0", "vulns": []},
    ]
    done = _report(tmp_path, deps)
    assert "VULNERABLE jinja2 3.0.0: GHSA-h5c8-rqwp-cp95" in done.stdout
    assert "2 of 2 locked packages audited, 1 with known vulnerabilities" in done.stdout
    assert done.returncode == 1


def test_a_partial_audit_names_what_was_not_checked(tmp_path: Path) -> None:
    deps = [{"name": "fastapi", "version": "0.115.0", "vulns": []}, UNREACHABLE[1]]
    done = _report(tmp_path, deps)
    assert "pip-audit PARTIAL: 1 of 2 packages were NOT audited: jinja2" in done.stdout
    assert done.returncode == 0
    assert _report(tmp_path, deps, required=True).returncode == 2


def test_a_clean_full_audit_passes(tmp_path: Path) -> None:
    deps = [{"name": "fastapi", "version": "0.115.0", "vulns": []}]
    done = _report(tmp_path, deps, required=True)
    assert done.stdout.strip() == (
        "pip-audit: 1 of 1 locked packages audited, 0 with known vulnerabilities"
    )
    assert done.returncode == 0
