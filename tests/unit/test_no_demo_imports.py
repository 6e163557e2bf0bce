"""Production code does not depend on the demo: reference data lives in ``terminology``.

The demo may import production code, never the other way round.  The one exception is
the CLI, the composition root, whose ``medcard demo`` command (and ``serve`` on an empty
database) loads the demo on request, lazily inside the command.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import medcard

SRC = Path(medcard.__file__).parent
#: The CLI loads the demo when asked to; nothing else may.
ALLOWED: frozenset[str] = frozenset({"cli/main.py"})


def _production_files() -> list[Path]:
    return [
        p
        for p in sorted(SRC.rglob("*.py"))
        if p.relative_to(SRC).parts[0] not in ("demo", "migrations")
    ]


def _demo_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("medcard.demo")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("medcard.demo"):
                found.append(node.module)
            elif node.module == "medcard" and any(a.name == "demo" for a in node.names):
                found.append("medcard.demo")
    return found


def test_no_production_module_imports_the_demo() -> None:
    offenders = {
        str(p.relative_to(SRC)): imports
        for p in _production_files()
        if (imports := _demo_imports(p)) and str(p.relative_to(SRC)) not in ALLOWED
    }
    assert offenders == {}


def test_importing_every_production_module_loads_no_demo_module() -> None:
    modules = [
        ".".join(("medcard", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        for p in _production_files()
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(k for k in sys.modules if k.startswith('medcard.demo')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
