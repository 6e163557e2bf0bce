"""Fixtures for the HTTP API tests: create resources and search with the system token."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.support import FHIR, Create, Search


@pytest.fixture
def create(client: TestClient) -> Create:
    """POST a resource with the system token and return what the server stored."""

    def post(resource: dict[str, Any]) -> dict[str, Any]:
        r = client.post(
            f"/fhir/{resource['resourceType']}", json=resource, headers={"Content-Type": FHIR}
        )
        assert r.status_code == 201, r.text
        stored: dict[str, Any] = r.json()
        return stored

    return post


@pytest.fixture
def search(client: TestClient) -> Search:
    """GET a search with the system token; assert 200 and return the Bundle."""

    def get(resource_type: str, params: Any = None, **headers: str) -> dict[str, Any]:
        r = client.get(f"/fhir/{resource_type}", params=params, headers=headers)
        assert r.status_code == 200, r.text
        bundle: dict[str, Any] = r.json()
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "searchset"
        return bundle

    return get
