"""Bundle reference resolution against absolute fullUrls, ``_list`` refused plainly, and
a CapabilityStatement with nothing that is not R4 (issue 21)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

FHIR = "application/fhir+json"
BASE = "http://localhost:9556/svc/fhir"


def _xds_like() -> dict[str, Any]:
    """The shape of the spec's Bundle-xds: relative references, absolute fullUrls."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:3fdc72f4-a11d-4a9d-9260-a9f745779e1d",
                "resource": {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "subject": {"reference": "Patient/a2"},
                    "author": [{"reference": "Practitioner/a3"}],
                    "content": [{"attachment": {"contentType": "text/plain", "data": "0J/RgNC4"}}],
                },
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": f"{BASE}/Patient/a2",
                "resource": {
                    "resourceType": "Patient",
                    "name": [{"family": "Петров"}],
                    "generalPractitioner": [{"reference": "Practitioner/a3"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"{BASE}/Practitioner/a3",
                "resource": {"resourceType": "Practitioner", "name": [{"family": "Иванова"}]},
                "request": {"method": "POST", "url": "Practitioner"},
            },
        ],
    }


def test_relative_references_resolve_against_absolute_full_urls(client: TestClient) -> None:
    r = client.post("/fhir", json=_xds_like(), headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.text
    doc_ref, patient_ref, prac_ref = (
        e["response"]["location"].split("/_history")[0] for e in r.json()["entry"]
    )
    doc = client.get(f"/fhir/{doc_ref}").json()
    # from an entry with a urn: fullUrl: the Bundle's one base
    assert doc["subject"]["reference"] == patient_ref
    assert doc["author"][0]["reference"] == prac_ref
    # from an entry with a RESTful fullUrl: that entry's base
    patient = client.get(f"/fhir/{patient_ref}").json()
    assert patient["generalPractitioner"][0]["reference"] == prac_ref
    assert patient_ref != "Patient/a2"


def test_a_relative_reference_to_nothing_in_the_bundle_is_still_checked(
    client: TestClient,
) -> None:
    bundle = _xds_like()
    bundle["entry"][0]["resource"]["subject"] = {"reference": "Patient/nowhere"}
    r = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR})
    assert r.status_code == 404, r.text
    assert "Patient/nowhere" in r.text


def test_list_parameter_is_refused_as_not_supported(client: TestClient) -> None:
    r = client.get("/fhir/Observation?_list=abc")
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "not-supported"
    assert "_list" in issue["diagnostics"]
    lenient = client.get("/fhir/Observation?_list=abc", headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200, lenient.text
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert "_list" in outcome[0]["resource"]["issue"][0]["diagnostics"]


def test_capability_statement_names_no_r4b_type_and_no_list_parameter(
    client: TestClient,
) -> None:
    cap = client.get("/fhir/metadata").json()
    rest = cap["rest"][0]
    types = {r["type"] for r in rest["resource"]}
    assert "SubscriptionStatus" not in types
    assert {"Subscription", "EffectEvidenceSynthesis", "Patient"} <= types  # R4's own
    params = {p["name"] for r in rest["resource"] for p in r.get("searchParam", [])}
    assert not params & {"_list", "_has", "_text", "_content", "_query", "_filter"}
    assert client.get("/fhir/SubscriptionStatus").status_code == 404
