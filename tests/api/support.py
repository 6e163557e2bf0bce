"""Helpers shared by the HTTP API and conformance tests: read bundles and outcomes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FHIR = "application/fhir+json"

Create = Callable[[dict[str, Any]], dict[str, Any]]
Search = Callable[..., dict[str, Any]]


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    """Ids of the bundle's entries in the given search mode, in bundle order."""
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == mode
    ]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == relation), None)


def assert_outcome(response: Any, status: int, *words: str) -> dict[str, Any]:
    """The response has this status and an OperationOutcome whose text names the problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR), response.headers
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    text = " ".join(
        f"{i.get('diagnostics', '')} {' '.join(i.get('expression', []))}" for i in body["issue"]
    )
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in {text!r}"
    return body
