"""_summary and _elements (R4 3.1.1.5.7, 3.1.1.5.9): return a marked subset of a resource."""

from __future__ import annotations

from functools import cache
from typing import Any

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
ALWAYS = ("resourceType", "id", "meta")


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """Top-level elements marked isSummary in the R4B model (fhir.resources metadata)."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return frozenset()
    names = set()
    for name, f in model.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        if extra.get("summary_element_property"):
            names.add(f.alias or name)
    return frozenset(names)


@cache
def choice_elements(resource_type: str) -> dict[str, str]:
    """Concrete names of choice elements and their base: ``valueQuantity`` -> ``value``."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return {}
    out = {}
    for name, f in model.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        base = extra.get("one_of_many")
        if isinstance(base, str):
            out[f.alias or name] = base
    return out


def _mark(res: dict[str, Any]) -> dict[str, Any]:
    meta = dict(res.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    res["meta"] = meta
    return res


def _keep(res: dict[str, Any], allowed: set[str] | frozenset[str]) -> dict[str, Any]:
    out = {}
    for key, value in res.items():
        # "_birthDate" carries the extensions of birthDate
        base = key[1:] if key.startswith("_") else key
        if key in ALWAYS or base in allowed:
            out[key] = value
    return out


def shape(res: dict[str, Any], summary: str | None, elements: list[str]) -> dict[str, Any]:
    rtype = res.get("resourceType", "")
    if elements:
        wanted = {e.split(".")[0].strip().removesuffix("[x]") for e in elements}
        # a choice element is asked for by its base name ("value"), or as "value[x]"
        choices = choice_elements(rtype)
        allowed = wanted | {name for name, base in choices.items() if base in wanted}
        return _mark(_keep(res, allowed))
    if summary == "true":
        names = summary_elements(rtype)
        kept = {k: v for k, v in res.items() if k in ALWAYS or k in names or _choice_in(k, names)}
        return _mark(kept)
    if summary == "text":
        kept = {k: v for k, v in res.items() if k in (*ALWAYS, "text")}
        return _mark(kept)
    if summary == "data":
        return _mark({k: v for k, v in res.items() if k != "text"})
    return res


def _choice_in(key: str, names: frozenset[str]) -> bool:
    return any(key.startswith(n) and len(key) > len(n) and key[len(n)].isupper() for n in names)
