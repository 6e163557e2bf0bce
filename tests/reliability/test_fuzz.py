"""Fuzzing, short form: zero 5xx in 10,000+ generated requests.

``/fhir`` gets the FHIR-aware fuzzer (reliability/fuzz.py: resources, Bundles, search
strings, headers); the other JSON endpoints get schemathesis from their OpenAPI
description.  The long form (``python -m reliability run --long``) sends 100,000+.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from reliability.fuzz import fuzz_fhir, fuzz_openapi, nonfhir_openapi

from tests import factories

FHIR_DRAWS = 4_300  # each draw is sent as 2-3 requests (see FuzzRequest.variants)
FHIR_REQUESTS = 10_000
OPENAPI_EXAMPLES = 150  # per operation and generation mode (valid, invalid)


@pytest.fixture
def http(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


def _send(http: TestClient) -> Callable[[str, str, dict[str, str], bytes | None], int]:
    def send(method: str, url: str, headers: dict[str, str], body: bytes | None) -> int:
        raw = {k: v.encode("latin-1") for k, v in headers.items()}
        return http.request(method, url, headers=raw, content=body).status_code

    return send


def test_fhir_fuzzer_gets_no_server_error(http: TestClient, token: Callable[..., str]) -> None:
    system = {"Authorization": f"Bearer {token()}"}
    patient = http.post("/fhir/Patient", json=factories.patient(), headers=system).json()
    obs = factories.observation(patient["id"])
    observation = http.post("/fhir/Observation", json=obs, headers=system).json()
    known = [f"Patient/{patient['id']}", f"Observation/{observation['id']}"]
    tokens = {
        "system": token(),
        "patient": token("patient/*.cruds", patient=patient["id"]),
        "practitioner": token(
            "user/*.cruds", subject="Practitioner/p1", extra={"role": "practitioner", "orgs": []}
        ),
        "narrow": token("system/Observation.rs"),
    }
    report = fuzz_fhir(_send(http), known, tokens, FHIR_DRAWS, seed=8)
    assert report.failures == [], report.summary()
    assert report.requests >= FHIR_REQUESTS, report.summary()
    # The fuzzer reached past the front door: reads, writes and refusals all happened.
    assert {200, 400, 404}.issubset(report.by_status), report.summary()


def test_schemathesis_finds_no_server_error_in_the_json_endpoints(
    http: TestClient, app: Any
) -> None:
    schema = nonfhir_openapi(app.openapi())
    assert {"/oauth/token", "/oauth/introspect", "/readyz"} <= set(schema["paths"])

    def send(kw: dict[str, Any]) -> int:
        return http.request(**kw).status_code

    report = fuzz_openapi(schema, send, OPENAPI_EXAMPLES, seed=8)
    assert report.failures == [], report.summary()
    assert report.requests >= 500, report.summary()
