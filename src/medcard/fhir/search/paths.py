"""Evaluate the compiled search-parameter paths against a resource's JSON.

A path is a list of steps compiled from the spec's FHIRPath expressions by
scripts/build_fhir_spec.py.  A step is either an element name, ``name[x]`` for a
choice element (any ``nameXxx`` key), or a dict with ``name`` plus ``where``
(field equality, e.g. telecom where system='phone') or ``resolve`` (a reference
whose target is of that type: FHIRPath's ``where(resolve() is Patient)``, decided
from the reference text, since the target need not be loaded).
"""

from __future__ import annotations

from typing import Any


def reference_type(ref: str) -> str | None:
    """Target type of a literal reference: 'Patient/1', 'http://x/fhir/Patient/1/_history/2'."""
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2]
    return None


def _children(node: dict[str, Any], name: str) -> list[Any]:
    if name.endswith("[x]"):
        prefix = name[:-3]
        n = len(prefix)
        return [
            v for k, v in node.items() if k.startswith(prefix) and len(k) > n and k[n].isupper()
        ]
    value = node.get(name)
    return [] if value is None else [value]


def evaluate(resource: dict[str, Any], steps: list[Any]) -> list[Any]:
    nodes: list[Any] = [resource]
    for step in steps:
        if isinstance(step, str):
            name, where, resolve = step, None, None
        else:
            name, where, resolve = step["name"], step.get("where"), step.get("resolve")
        found: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            for value in _children(node, name):
                found.extend(value if isinstance(value, list) else [value])
        if where:
            found = [
                f
                for f in found
                if isinstance(f, dict) and all(f.get(k) == v for k, v in where.items())
            ]
        if resolve:
            found = [
                f
                for f in found
                if isinstance(f, dict)
                and isinstance(f.get("reference"), str)
                and reference_type(f["reference"]) == resolve
            ]
        nodes = found
        if not nodes:
            break
    return nodes
