"""The SMART on FHIR python client (``fhirclient``, R4 models) against a live server.

fhirclient parses every answer into its own R4 model classes, so these tests check
that what medcard sends is FHIR another implementation understands, and that its
requests (paths, headers, paging by ``next`` links) are understood by medcard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from fhirclient import server as fhir_server
from fhirclient.models.bundle import Bundle
from fhirclient.models.codeableconcept import CodeableConcept
from fhirclient.models.coding import Coding
from fhirclient.models.fhirdate import FHIRDate
from fhirclient.models.fhirdatetime import FHIRDateTime
from fhirclient.models.fhirreference import FHIRReference
from fhirclient.models.humanname import HumanName
from fhirclient.models.identifier import Identifier
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.models.quantity import Quantity

from medcard import identifiers
from tests import factories

pytestmark = pytest.mark.live


@pytest.fixture
def server(live_server: str, token: Callable[..., str]) -> Iterator[fhir_server.FHIRServer]:
    """fhirclient's server object; the bearer token rides on its requests session."""
    srv = fhir_server.FHIRServer(None, base_uri=f"{live_server}/fhir")
    srv.session.headers["Authorization"] = f"Bearer {token()}"
    yield srv
    srv.session.close()


def _patient(family: str, given: str = "Мария", gender: str = "female") -> Patient:
    p = Patient()
    name = HumanName()
    name.family = family
    name.given = [given, "Ивановна"]
    p.name = [name]
    ident = Identifier()
    ident.system = identifiers.SNILS_SYSTEM
    ident.value = factories.snils()
    p.identifier = [ident]
    p.gender = gender
    p.birthDate = FHIRDate("1987-02-11")
    return p


def _create(srv: fhir_server.FHIRServer, resource: Any) -> str:
    body = resource.create(srv)
    assert body is not None
    rid = str(body["id"])
    resource.id = rid
    return rid


def _observation(patient_id: str, value: float) -> Observation:
    obs = Observation()
    obs.status = "final"
    coding = Coding()
    coding.system = "http://loinc.org"
    coding.code = "718-7"
    obs.code = CodeableConcept()
    obs.code.coding = [coding]
    obs.subject = FHIRReference()
    obs.subject.reference = f"Patient/{patient_id}"
    obs.effectiveDateTime = FHIRDateTime("2024-03-01T10:00:00+03:00")
    obs.valueQuantity = Quantity()
    obs.valueQuantity.value = value
    obs.valueQuantity.unit = "g/L"
    obs.valueQuantity.system = "http://unitsofmeasure.org"
    obs.valueQuantity.code = "g/L"
    return obs


def test_capability_statement_parses_as_r4(server: fhir_server.FHIRServer) -> None:
    server.get_capability()
    cs = server.capabilityStatement
    assert cs.fhirVersion == "4.0.1"
    types = {r.type for r in cs.rest[0].resource}
    assert {"Patient", "Observation", "Claim"} <= types


def test_create_and_read_a_patient(server: fhir_server.FHIRServer) -> None:
    rid = _create(server, _patient("Сидорова"))
    back = Patient.read(rid, server)
    assert back.id == rid
    assert back.name[0].family == "Сидорова"
    assert back.name[0].given == ["Мария", "Ивановна"]
    assert back.birthDate.isostring == "1987-02-11"
    assert back.meta.versionId == "1"
    assert back.identifier[0].system == identifiers.SNILS_SYSTEM


def test_search_with_where_and_struct(server: fhir_server.FHIRServer) -> None:
    wanted = _create(server, _patient("Сёмина"))
    _create(server, _patient("Сёмина", given="Пётр", gender="male"))
    _create(server, _patient("Другая"))
    search = Patient.where(struct={"family": "семина", "gender": "female"})
    found = list(search.perform_resources_iter(server))
    assert [p.id for p in found] == [wanted]
    assert isinstance(found[0], Patient)
    with pytest.warns(DeprecationWarning, match="perform_resources"):
        assert [p.id for p in search.perform_resources(server)] == [wanted]


def test_search_with_modifiers_and_prefixes(server: fhir_server.FHIRServer) -> None:
    old = _patient("Старшова")
    old.birthDate = FHIRDate("1950-01-01")
    old_id = _create(server, old)
    _create(server, _patient("Младшова"))
    # fhirclient's {"$lt": ...} operators send DSTU2's "<1960"; R4 prefixes go in the value
    born_before = Patient.where(struct={"birthdate": "lt1960"})
    assert [p.id for p in born_before.perform_resources_iter(server)] == [old_id]
    exact = Patient.where(struct={"family:exact": "Старшова"})
    assert [p.id for p in exact.perform_resources_iter(server)] == [old_id]


def test_search_pages_through_next_links(server: fhir_server.FHIRServer) -> None:
    made = {_create(server, _patient("Страничкина")) for _ in range(5)}
    search = Patient.where(struct={"family": "Страничкина", "_count": "2"})
    pages = list(search.perform_iter(server))
    assert len(pages) == 3
    assert all(isinstance(b, Bundle) for b in pages)
    seen = [e.resource.id for b in pages for e in (b.entry or [])]
    assert sorted(seen) == sorted(made)


def test_include_brings_the_referenced_patient(server: fhir_server.FHIRServer) -> None:
    pid = _create(server, _patient("Включённая"))
    oid = _create(server, _observation(pid, 131.0))
    search = Observation.where(struct={"subject": f"Patient/{pid}"}).include("subject")
    (bundle,) = list(search.perform_iter(server))
    by_mode = {e.search.mode: e.resource for e in bundle.entry}
    assert isinstance(by_mode["match"], Observation)
    assert by_mode["match"].id == oid
    assert by_mode["match"].valueQuantity.value == 131.0
    assert isinstance(by_mode["include"], Patient)
    assert by_mode["include"].id == pid


def test_update_makes_a_new_version(server: fhir_server.FHIRServer) -> None:
    p = _patient("Обновлённая")
    rid = _create(server, p)
    p.gender = "other"
    body = p.update(server)
    assert body is not None
    assert body["meta"]["versionId"] == "2"
    assert Patient.read(rid, server).gender == "other"


def test_delete_then_read_is_gone(server: fhir_server.FHIRServer) -> None:
    p = _patient("Удалённая")
    rid = _create(server, p)
    p.delete(server)
    with pytest.raises(requests.HTTPError) as err:
        Patient.read(rid, server)
    assert err.value.response.status_code == 410


def test_missing_resource_is_not_found(server: fhir_server.FHIRServer) -> None:
    with pytest.raises(fhir_server.FHIRNotFoundException):
        Patient.read("no-such-patient", server)


def test_requests_without_the_token_are_unauthorized(live_server: str) -> None:
    anonymous = fhir_server.FHIRServer(None, base_uri=f"{live_server}/fhir")
    with pytest.raises(fhir_server.FHIRUnauthorizedException):
        Patient.read("whatever", anonymous)
    anonymous.session.close()


def test_invalid_resource_is_refused_with_an_outcome(server: fhir_server.FHIRServer) -> None:
    p = _patient("Неверная")
    p.identifier[0].value = "12345678900"
    with pytest.raises(requests.HTTPError) as err:
        p.create(server)
    assert err.value.response.status_code in (400, 422)
    body = err.value.response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "SNILS" in body["issue"][0]["diagnostics"]
