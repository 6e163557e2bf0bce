"""Concurrent writers against a real server: optimistic locking and conditional creates.

Requests run from threads at once (a barrier releases them together) against the
live uvicorn server, on whichever store the session uses (SQLite or PostgreSQL).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from medcard import identifiers
from tests import factories
from tests.api.support import Create

N = 10

pytestmark = pytest.mark.live


def together(n: int, call: Callable[[httpx.Client, int], httpx.Response]) -> list[httpx.Response]:
    """Run ``call`` from n threads released at the same moment; return the responses."""
    barrier = threading.Barrier(n)
    out: list[httpx.Response | BaseException | None] = [None] * n

    def run(i: int) -> None:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            try:
                out[i] = call(http, i)
            except BaseException as exc:  # reported below, with the thread's index
                out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    responses = []
    for i, r in enumerate(out):
        assert isinstance(r, httpx.Response), f"thread {i}: {r!r}"
        responses.append(r)
    return responses


@pytest.fixture
def auth(token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token()}", "Content-Type": "application/fhir+json"}


def test_concurrent_updates_with_the_same_if_match_let_exactly_one_win(
    live_server: str, create: Create, client: TestClient, auth: dict[str, str]
) -> None:
    p = create(factories.patient())
    url = f"{live_server}/fhir/Patient/{p['id']}"

    def update(http: httpx.Client, i: int) -> httpx.Response:
        body = {**p, "name": [{"family": f"Писатель{i}"}]}
        return http.put(url, json=body, headers={**auth, "If-Match": 'W/"1"'})

    responses = together(N, update)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 412: N - 1}, [r.text for r in responses]
    for r in responses:
        if r.status_code == 412:
            assert r.json()["resourceType"] == "OperationOutcome"
    winner = next(r for r in responses if r.status_code == 200).json()
    stored = client.get(f"/fhir/Patient/{p['id']}").json()
    assert stored["meta"]["versionId"] == "2"
    assert stored["name"] == winner["name"]
    assert client.get(f"/fhir/Patient/{p['id']}/_history").json()["total"] == 2


def test_concurrent_updates_without_if_match_all_apply_in_turn(
    live_server: str, create: Create, client: TestClient, auth: dict[str, str]
) -> None:
    p = create(factories.patient())
    url = f"{live_server}/fhir/Patient/{p['id']}"

    def update(http: httpx.Client, i: int) -> httpx.Response:
        return http.put(url, json={**p, "name": [{"family": f"Писатель{i}"}]}, headers=auth)

    responses = together(N, update)
    assert Counter(r.status_code for r in responses) == {200: N}, [r.text for r in responses]
    versions = sorted(int(r.json()["meta"]["versionId"]) for r in responses)
    assert versions == list(range(2, N + 2))
    history = client.get(f"/fhir/Patient/{p['id']}/_history", params={"_count": "100"}).json()
    assert history["total"] == N + 1


def test_concurrent_identical_conditional_creates_make_one_resource(
    live_server: str, client: TestClient, auth: dict[str, str]
) -> None:
    p = factories.patient()
    snils = p["identifier"][0]["value"]
    cond = {"If-None-Exist": f"identifier={identifiers.SNILS_SYSTEM}|{snils}"}

    def create(http: httpx.Client, _i: int) -> httpx.Response:
        return http.post(f"{live_server}/fhir/Patient", json=p, headers={**auth, **cond})

    responses = together(N, create)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: N - 1}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    found = client.get("/fhir/Patient", params={"identifier": snils, "_total": "accurate"})
    assert found.json()["total"] == 1


def test_concurrent_conditional_creates_in_transactions_make_one_resource(
    live_server: str, client: TestClient, auth: dict[str, str]
) -> None:
    org = {**factories.organization(), "identifier": [{"system": "urn:test", "value": "mo-1"}]}
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:org",
                "resource": org,
                "request": {
                    "method": "POST",
                    "url": "Organization",
                    "ifNoneExist": "identifier=urn:test|mo-1",
                },
            }
        ],
    }

    def send(http: httpx.Client, _i: int) -> httpx.Response:
        # "/fhir/": POST to "/fhir" is answered with a redirect (see the transactions tests)
        return http.post(f"{live_server}/fhir/", json=tx, headers=auth)

    responses = together(N, send)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    statuses = Counter(r.json()["entry"][0]["response"]["status"] for r in responses)
    assert statuses == {"201 Created": 1, "200 OK": N - 1}
    found = client.get("/fhir/Organization", params={"identifier": "urn:test|mo-1"}).json()
    assert len(found["entry"]) == 1


def test_concurrent_creates_with_the_same_client_id_make_one_resource(
    live_server: str, client: TestClient, auth: dict[str, str]
) -> None:
    body = {**factories.patient(), "id": "chosen-once"}

    def put(http: httpx.Client, _i: int) -> httpx.Response:
        return http.put(f"{live_server}/fhir/Patient/chosen-once", json=body, headers=auth)

    responses = together(N, put)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: N - 1}, [r.text for r in responses]
    history = client.get("/fhir/Patient/chosen-once/_history", params={"_count": "100"}).json()
    assert history["total"] == N


def test_concurrent_reads_see_whole_versions(
    live_server: str, create: Create, auth: dict[str, str]
) -> None:
    p = create(factories.patient())
    url = f"{live_server}/fhir/Patient/{p['id']}"

    def read_or_write(http: httpx.Client, i: int) -> httpx.Response:
        if i % 2:
            return http.put(url, json={**p, "name": [{"family": f"Ф{i}"}]}, headers=auth)
        return http.get(url, headers=auth)

    responses = together(N, read_or_write)
    for r in responses:
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert r.headers["ETag"] == f'W/"{body["meta"]["versionId"]}"'
