"""Primitive extensions (``_name``) are accepted and kept at every depth, inside
extensions too (R4 json.html#primitive, issue 21)."""

from __future__ import annotations

import tarfile
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conformance.r4_corpus import corpus_tarball

FHIR = "application/fhir+json"


def _basic() -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "id": "b-ext",
        "code": {"text": "заметка", "_text": {"id": "t1"}},
        "extension": [
            {
                "url": "http://example.org/fhir/StructureDefinition/kind",
                "valueCode": "note",
                "_valueCode": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/translation",
                            "extension": [
                                {"url": "lang", "valueCode": "ru"},
                                {
                                    "url": "content",
                                    "valueString": "заметка",
                                    "_valueString": {"id": "deep"},
                                },
                            ],
                        }
                    ]
                },
            },
            {
                # a value known only by its extensions (json.html#primitive: no value)
                "url": "http://example.org/fhir/StructureDefinition/absent",
                "_valueString": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                            "valueCode": "unknown",
                        }
                    ]
                },
            },
        ],
    }


def _without_meta(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k != "meta"}


def test_basic_with_primitive_extensions_inside_extensions_reads_back_unchanged(
    client: TestClient,
) -> None:
    body = _basic()
    r = client.put("/fhir/Basic/b-ext", json=body, headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.text
    assert _without_meta(client.get("/fhir/Basic/b-ext").json()) == body


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"bogus": 1}, "Basic.extension[0]._valueCode.bogus"),
        ("note", "Basic.extension[0]._valueCode"),
        (
            {"extension": [{"url": "x", "valueString": 5}]},
            "Basic.extension[0]._valueCode.extension.0.valueString",
        ),
    ],
)
def test_a_malformed_primitive_extension_is_still_refused(
    client: TestClient, payload: Any, where: str
) -> None:
    body = _basic()
    body["extension"][0]["_valueCode"] = payload
    r = client.put("/fhir/Basic/b-ext", json=body, headers={"Content-Type": FHIR})
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert where in r.text


def test_an_unknown_element_beside_a_primitive_extension_is_still_refused(
    client: TestClient,
) -> None:
    body = _basic()
    body["extension"][0]["_valueNothing"] = {"id": "x"}
    r = client.put("/fhir/Basic/b-ext", json=body, headers={"Content-Type": FHIR})
    assert r.status_code == 400, r.text
    assert "_valueNothing" in r.text


def test_codesystem_v2_0003_from_the_r4_examples_reads_back_unchanged(
    client: TestClient,
) -> None:
    tarball = corpus_tarball()
    if tarball is None:
        pytest.skip("the R4 examples corpus (shared/data/fhir-r4-examples) is not here")
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("r4-examples/CodeSystem-v2-0003.json")
        assert member is not None
        raw = member.read()
    r = client.put("/fhir/CodeSystem/v2-0003", content=raw, headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.text
    assert _without_meta(client.get("/fhir/CodeSystem/v2-0003").json()) == _without_meta(
        orjson.loads(raw)
    )
