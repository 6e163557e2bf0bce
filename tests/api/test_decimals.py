"""Decimals keep their exact text end to end (R4 datatypes.html#decimal, issue 21).

Every check looks at the bytes the server answers with (and the bytes it stored), not at
parsed JSON: a parser would turn ``0.40`` and ``0.4`` into the same float.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard.db.tables import resource_versions, resources
from medcard.fhir import jsonio

FHIR = "application/fhir+json"
# the texts of the issue: trailing zeros, an exponent, more digits than a double holds
VALUES = ["0.40", "105.00", "1E-22", "66.899999999999991", "42.256500", "-0.0", "1.0e2"]


def _observation(pid: str, oid: str, values: list[str]) -> bytes:
    """The JSON text itself: a dict would go through a parser's floats."""
    components = ",".join(
        f'{{"code": {{"text": "c{i}"}}, "valueQuantity": {{"value": {v}, "unit": "mg"}}}}'
        for i, v in enumerate(values)
    )
    return (
        f'{{"resourceType": "Observation", "id": "{oid}", "status": "final",'
        f' "code": {{"text": "lab"}}, "subject": {{"reference": "Patient/{pid}"}},'
        f' "valueQuantity": {{"value": {values[0]}, "unit": "mg"}}, "component": [{components}]}}'
    ).encode()


def _numbers(raw: bytes) -> list[str]:
    """The text of every number after a "value" key, in order."""
    return re.findall(rb'"value":(-?[0-9][0-9.eE+-]*)', raw.replace(b": ", b":"))


@pytest.fixture
def stored(client: TestClient) -> tuple[str, str]:
    pid = client.put(
        "/fhir/Patient/p-dec",
        json={"resourceType": "Patient", "id": "p-dec"},
        headers={"Content-Type": FHIR},
    )
    assert pid.status_code == 201, pid.text
    r = client.put(
        "/fhir/Observation/o-dec",
        content=_observation("p-dec", "o-dec", VALUES),
        headers={"Content-Type": FHIR},
    )
    assert r.status_code == 201, r.text
    assert [n.decode() for n in _numbers(r.content)] == [VALUES[0], *VALUES]
    return "p-dec", "o-dec"


def test_decimals_come_back_as_sent_from_read_history_search_and_everything(
    client: TestClient, stored: tuple[str, str]
) -> None:
    pid, oid = stored
    want = [VALUES[0], *VALUES]
    for url in (
        f"/fhir/Observation/{oid}",
        f"/fhir/Observation/{oid}/_history/1",
        f"/fhir/Observation/{oid}/_history",
        "/fhir/Observation/_history",
        f"/fhir/Observation?subject=Patient/{pid}",
        f"/fhir/Observation?_id={oid}&_elements=valueQuantity,component",
        f"/fhir/Patient/{pid}/$everything",
    ):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        assert [n.decode() for n in _numbers(r.content)] == want, url


def test_stored_text_keeps_the_decimals(engine: Engine, stored: tuple[str, str]) -> None:
    _, oid = stored
    with engine.connect() as conn:
        current = conn.execute(
            select(resources.c.content).where(resources.c.id == oid)
        ).scalar_one()
        version = conn.execute(
            select(resource_versions.c.content).where(resource_versions.c.id == oid)
        ).scalar_one()
    for content in (bytes(current), bytes(version)):
        assert [n.decode() for n in _numbers(content)] == [VALUES[0], *VALUES]
        assert jsonio.loads(content)["valueQuantity"]["value"].text == "0.40"


def test_transaction_response_keeps_the_decimals(client: TestClient) -> None:
    body = (
        '{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": '
        + _observation("p-none", "o-tx", ["105.00", "1E-22"])
        .decode()
        .replace('"subject": {"reference": "Patient/p-none"},', "")
        + ', "request": {"method": "PUT", "url": "Observation/o-tx"}}]}'
    )
    r = client.post(
        "/fhir", content=body, headers={"Content-Type": FHIR, "Prefer": "return=representation"}
    )
    assert r.status_code == 200, r.text
    assert [n.decode() for n in _numbers(r.content)] == ["105.00", "105.00", "1E-22"]
    again = client.get("/fhir/Observation/o-tx")
    assert [n.decode() for n in _numbers(again.content)] == ["105.00", "105.00", "1E-22"]


def test_quantity_search_compares_numbers_with_the_implicit_range(
    client: TestClient, stored: tuple[str, str]
) -> None:
    _, oid = stored

    def found(query: str) -> bool:
        r = client.get(f"/fhir/Observation?{query}")
        assert r.status_code == 200, r.text
        return oid in {e["resource"]["id"] for e in r.json().get("entry", [])}

    # 0.40 is stored; "0.4" covers 0.35..0.45, "0.400" only 0.3995..0.4005
    assert found("value-quantity=0.4")
    assert found("value-quantity=0.400")
    assert found("value-quantity=4e-1")
    assert not found("value-quantity=0.41")
    assert found("value-quantity=gt0.39")
    assert not found("value-quantity=gt0.40")
    assert found("value-quantity=le0.40")
    assert found("component-value-quantity=105")
    assert not found("component-value-quantity=105.1")


def test_a_decimal_where_an_integer_belongs_is_still_refused(client: TestClient) -> None:
    body = b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueInteger": 1.5}'
    r = client.post("/fhir/Observation", content=body, headers={"Content-Type": FHIR})
    assert r.status_code == 400, r.text
    assert "valueInteger" in r.text


def test_jsonio_keeps_text_and_refuses_what_json_refuses() -> None:
    raw = b'{"a": [0.40, 1E-22, 10, 123456789012345678901234567890, 66.899999999999991]}'
    assert jsonio.dumps(jsonio.loads(raw)) == raw.replace(b" ", b"")
    for bad in (b"[NaN]", b"[Infinity]", b'["\\ud800"]', b"\xff", b"[" * 1020 + b"]" * 1020):
        with pytest.raises(jsonio.JSONDecodeError):
            jsonio.loads(bad)
