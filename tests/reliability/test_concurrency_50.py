"""Fifty writers at once (issue 8): the API suite races 10 (tests/api/test_concurrency.py);
here the same guarantees hold at 50, on whichever store the run uses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from medcard import identifiers
from tests import factories
from tests.api.test_concurrency import together

N = 50

pytestmark = pytest.mark.live


@pytest.fixture
def auth(token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token()}", "Content-Type": "application/fhir+json"}


def test_fifty_updates_from_the_same_version_one_wins_the_rest_get_412(
    live_server: str, client: TestClient, auth: dict[str, str]
) -> None:
    created = client.post("/fhir/Patient", json=factories.patient())
    assert created.status_code == 201, created.text
    p = created.json()
    url = f"{live_server}/fhir/Patient/{p['id']}"

    def update(http: httpx.Client, i: int) -> httpx.Response:
        body = {**p, "name": [{"family": f"Писатель{i}"}]}
        return http.put(url, json=body, headers={**auth, "If-Match": 'W/"1"'})

    responses = together(N, update)
    assert Counter(r.status_code for r in responses) == {200: 1, 412: N - 1}
    assert all(
        r.json()["resourceType"] == "OperationOutcome" for r in responses if r.status_code == 412
    )
    winner = next(r for r in responses if r.status_code == 200).json()
    stored = client.get(f"/fhir/Patient/{p['id']}").json()
    assert stored["meta"]["versionId"] == "2"
    assert stored["name"] == winner["name"]
    assert client.get(f"/fhir/Patient/{p['id']}/_history").json()["total"] == 2


def test_fifty_identical_conditional_creates_make_one_resource(
    live_server: str, client: TestClient, auth: dict[str, str]
) -> None:
    p = factories.patient()
    snils = p["identifier"][0]["value"]
    cond = {"If-None-Exist": f"identifier={identifiers.SNILS_SYSTEM}|{snils}"}

    def create(http: httpx.Client, _i: int) -> httpx.Response:
        return http.post(f"{live_server}/fhir/Patient", json=p, headers={**auth, **cond})

    responses = together(N, create)
    assert Counter(r.status_code for r in responses) == {201: 1, 200: N - 1}
    assert len({r.json()["id"] for r in responses}) == 1
    found = client.get("/fhir/Patient", params={"identifier": snils, "_total": "accurate"})
    assert found.json()["total"] == 1


def test_fifty_identical_conditional_updates_make_one_resource_with_fifty_versions(
    live_server: str, client: TestClient, auth: dict[str, str]
) -> None:
    p = factories.patient()
    snils = p["identifier"][0]["value"]

    def put(http: httpx.Client, i: int) -> httpx.Response:
        body = {**p, "name": [{"family": f"Писатель{i}"}]}
        return http.put(
            f"{live_server}/fhir/Patient",
            params={"identifier": f"{identifiers.SNILS_SYSTEM}|{snils}"},
            json=body,
            headers=auth,
        )

    responses = together(N, put)
    assert Counter(r.status_code for r in responses) == {201: 1, 200: N - 1}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    versions = sorted(int(r.json()["meta"]["versionId"]) for r in responses)
    assert versions == list(range(1, N + 1))
    history = client.get(f"/fhir/Patient/{ids.pop()}/_history", params={"_count": "100"})
    assert history.json()["total"] == N
