"""Create, read, vread, update, delete and history through the HTTP interface."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests import factories

FHIR = "application/fhir+json"


def create(client: TestClient, resource: dict) -> dict:
    r = client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers={"Content-Type": FHIR}
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_create_assigns_id_version_and_location(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json=factories.patient(), headers={"Content-Type": FHIR})
    assert r.status_code == 201
    body = r.json()
    assert body["meta"]["versionId"] == "1"
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert r.headers["content-type"].startswith(FHIR)


def test_read_returns_what_was_stored(client: TestClient) -> None:
    p = create(client, factories.patient(family="Смирнова", given="Анна", gender="female"))
    r = client.get(f"/fhir/Patient/{p['id']}")
    assert r.status_code == 200
    assert r.json()["name"][0]["family"] == "Смирнова"
    assert r.headers["Last-Modified"]


def test_update_makes_a_new_version_and_vread_keeps_the_old(client: TestClient) -> None:
    p = create(client, factories.patient())
    p["gender"] = "other"
    r = client.put(f"/fhir/Patient/{p['id']}", json=p, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["versionId"] == "2"
    old = client.get(f"/fhir/Patient/{p['id']}/_history/1").json()
    assert old["gender"] == "male"
    hist = client.get(f"/fhir/Patient/{p['id']}/_history").json()
    assert hist["total"] == 2
    assert [e["response"]["etag"] for e in hist["entry"]] == ['W/"2"', 'W/"1"']


def test_stale_if_match_is_refused_with_412(client: TestClient) -> None:
    p = create(client, factories.patient())
    client.put(f"/fhir/Patient/{p['id']}", json=p)
    r = client.put(f"/fhir/Patient/{p['id']}", json=p, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 412
    assert r.json()["resourceType"] == "OperationOutcome"


def test_update_creates_with_client_id(client: TestClient) -> None:
    p = factories.patient(id="client-chosen-1")
    r = client.put("/fhir/Patient/client-chosen-1", json=p)
    assert r.status_code == 201
    assert client.get("/fhir/Patient/client-chosen-1").status_code == 200


def test_delete_is_logical_and_history_remains(client: TestClient) -> None:
    p = create(client, factories.patient())
    assert client.delete(f"/fhir/Patient/{p['id']}").status_code == 200
    assert client.get(f"/fhir/Patient/{p['id']}").status_code == 410
    hist = client.get(f"/fhir/Patient/{p['id']}/_history").json()
    assert hist["total"] == 2
    assert hist["entry"][0]["request"]["method"] == "DELETE"
    search = client.get("/fhir/Patient", params={"_id": p["id"]}).json()
    assert "entry" not in search


def test_prefer_minimal_and_operation_outcome(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json=factories.patient(), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.content == b""
    r = client.post(
        "/fhir/Patient", json=factories.patient(), headers={"Prefer": "return=OperationOutcome"}
    )
    assert r.json()["resourceType"] == "OperationOutcome"


def test_conditional_create_returns_the_existing_resource(client: TestClient) -> None:
    p = factories.patient()
    snils = p["identifier"][0]["value"]
    cond = {"If-None-Exist": f"identifier=urn:oid:1.2.643.100.3|{snils}"}
    first = client.post("/fhir/Patient", json=p, headers=cond)
    second = client.post("/fhir/Patient", json=p, headers=cond)
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]


def test_conditional_update_creates_then_updates(client: TestClient) -> None:
    p = factories.patient()
    snils = p["identifier"][0]["value"]
    url = f"/fhir/Patient?identifier=urn:oid:1.2.643.100.3|{snils}"
    first = client.put(url, json=p)
    assert first.status_code == 201
    second = client.put(url, json={**p, "gender": "female"})
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["meta"]["versionId"] == "2"


def test_every_interaction_needs_a_token(app: object) -> None:
    with TestClient(app) as anon:  # type: ignore[arg-type]
        r = anon.get("/fhir/Patient")
        assert r.status_code == 401
        assert r.json()["resourceType"] == "OperationOutcome"
        assert anon.get("/fhir/metadata").status_code == 200


def test_capability_statement_lists_types_and_search_params(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    types = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert cs["fhirVersion"] == "4.0.1"
    assert "Claim" in types
    assert {"name": "code", "type": "token"} in types["Observation"]["searchParam"]
    assert types["AuditEvent"]["interaction"] == [{"code": "read"}, {"code": "search-type"}]
