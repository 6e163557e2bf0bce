"""Search parameters per resource type, as declared by the FHIR R4 specification."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from medcard.fhir import spec

# Answered from the resources table itself, never from index rows.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})
# Result parameters (R4 3.1.1.5): they shape the answer rather than filter it.
RESULT_PARAMS = frozenset(
    {
        "_sort",
        "_count",
        "_include",
        "_revinclude",
        "_summary",
        "_total",
        "_elements",
        "_contained",
        "_containedType",
        "_offset",
        "_format",
        "_pretty",
        "_totalMethod",  # sent by some clients (fhirpy's count()); same as _total here
    }
)


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # token string date reference quantity number uri
    paths: tuple[Any, ...]
    targets: tuple[str, ...]


# Search parameters medcard adds to the specification's.  The reviewer gate (issue 7)
# reaches the entries a correction report disputes through Task.input.valueReference,
# which R4 does not index.
LOCAL_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "Task": {
        "input-reference": {
            "type": "reference",
            "paths": [["input", "valueReference"]],
            "targets": [],
        }
    }
}


@cache
def params_for(resource_type: str) -> dict[str, SearchParam]:
    declared = {
        **spec.search_parameters().get(resource_type, {}),
        **LOCAL_PARAMETERS.get(resource_type, {}),
    }
    return {
        name: SearchParam(name, d["type"], tuple(d["paths"]), tuple(d["targets"]))
        for name, d in declared.items()
    }


@cache
def indexed_params(resource_type: str) -> tuple[SearchParam, ...]:
    return tuple(p for n, p in params_for(resource_type).items() if n not in COLUMN_PARAMS)


def lookup(resource_type: str, name: str) -> SearchParam | None:
    return params_for(resource_type).get(name)
