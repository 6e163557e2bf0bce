"""The ``fhirpy`` client (Beda Software) against a live server.

fhirpy builds its own search URLs (chains, modifiers, prefixes, _sort, _include),
follows ``next`` links itself and maps HTTP statuses to exceptions, so these tests
check medcard from the outside, the way an integrating system would see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import (
    AuthorizationError,
    OperationOutcome,
    ResourceNotFound,
)

from medcard import identifiers
from tests import factories

pytestmark = pytest.mark.live


@pytest.fixture
def fhir(live_server: str, token: Callable[..., str]) -> SyncFHIRClient:
    return SyncFHIRClient(f"{live_server}/fhir", authorization=f"Bearer {token()}")


def _save(fhir: SyncFHIRClient, data: dict[str, Any]) -> Any:
    resource = fhir.resource(data["resourceType"], **data)
    resource.save()
    assert resource.id
    return resource


def test_create_read_and_reference(fhir: SyncFHIRClient) -> None:
    p = _save(fhir, factories.patient(family="Клиентова", gender="female"))
    assert p["meta"]["versionId"] == "1"
    again = fhir.reference("Patient", p.id).to_resource()
    assert again["name"][0]["family"] == "Клиентова"
    assert fhir.resources("Patient").search(_id=p.id).get().id == p.id
    assert fhir.get("Patient", p.id)["gender"] == "female"


def test_search_by_token_string_and_date(fhir: SyncFHIRClient) -> None:
    p = _save(fhir, factories.patient(family="Токенова", birthDate="1961-03-04"))
    _save(fhir, factories.patient(family="Токенова", birthDate="1999-12-31"))
    snils = p["identifier"][0]["value"]
    by_snils = fhir.resources("Patient").search(identifier=f"{identifiers.SNILS_SYSTEM}|{snils}")
    assert [r.id for r in by_snils.fetch()] == [p.id]
    old = fhir.resources("Patient").search(family="токенова", birthdate__lt="1970")
    assert [r.id for r in old.fetch()] == [p.id]
    exact = fhir.resources("Patient").search(family__exact="Токенова").fetch()
    assert len(exact) == 2


def test_search_with_chaining(fhir: SyncFHIRClient) -> None:
    wanted = _save(fhir, factories.patient(family="Цепочкина"))
    other = _save(fhir, factories.patient(family="Другова"))
    obs = _save(fhir, factories.observation(wanted.id))
    _save(fhir, factories.observation(other.id))
    chained = fhir.resources("Observation").search(subject__Patient__family="цепочкина")
    assert [r.id for r in chained.fetch()] == [obs.id]
    snils = wanted["identifier"][0]["value"]
    by_id = fhir.resources("Observation").search(patient__identifier=snils)
    assert [r.id for r in by_id.fetch()] == [obs.id]


def test_search_with_sorting(fhir: SyncFHIRClient) -> None:
    p = _save(fhir, factories.patient())
    dates = ["2024-03-01T10:00:00+03:00", "2023-01-15T08:00:00+03:00", "2024-11-20T12:30:00+03:00"]
    made = {_save(fhir, factories.observation(p.id, date=d)).id: d for d in dates}
    newest_first = fhir.resources("Observation").search(patient=p.id).sort("-date").fetch()
    assert [made[r.id] for r in newest_first] == sorted(dates, key=lambda d: d[:10], reverse=True)
    oldest_first = fhir.resources("Observation").search(patient=p.id).sort("date").fetch()
    assert [r.id for r in oldest_first] == [r.id for r in reversed(newest_first)]


def test_search_with_include_and_revinclude(fhir: SyncFHIRClient) -> None:
    org = _save(fhir, factories.organization())
    p = _save(fhir, factories.patient(managingOrganization={"reference": f"Organization/{org.id}"}))
    obs = _save(fhir, factories.observation(p.id))
    raw = (
        fhir.resources("Observation")
        .search(patient=p.id)
        .include("Observation", "subject")
        .fetch_raw()
    )
    modes = {(e.resource.resourceType, e.resource.id): e.search.mode for e in raw.entry}
    assert modes == {("Observation", obs.id): "match", ("Patient", p.id): "include"}
    patients = (
        fhir.resources("Patient")
        .search(_id=p.id)
        .include("Patient", "organization")
        .revinclude("Observation", "subject")
        .fetch_raw()
    )
    got = {(e.resource.resourceType, e.search.mode) for e in patients.entry}
    assert got == {("Patient", "match"), ("Organization", "include"), ("Observation", "include")}


def test_update_and_conditional_update(fhir: SyncFHIRClient) -> None:
    p = _save(fhir, factories.patient(family="Меняева"))
    p["gender"] = "other"
    p.save()
    assert p["meta"]["versionId"] == "2"
    assert fhir.get("Patient", p.id)["gender"] == "other"
    snils = p["identifier"][0]["value"]
    body = fhir.resource(
        "Patient", **{**factories.patient(family="Меняева"), "identifier": p["identifier"]}
    )
    updated, created = (
        fhir.resources("Patient")
        .search(identifier=f"{identifiers.SNILS_SYSTEM}|{snils}")
        .update(body)
    )
    assert created is False
    assert updated.id == p.id
    assert updated["meta"]["versionId"] == "3"


def test_delete_then_read_is_not_found(fhir: SyncFHIRClient) -> None:
    p = _save(fhir, factories.patient(family="Удаляева"))
    p.delete()
    with pytest.raises(ResourceNotFound):
        fhir.get("Patient", p.id)
    assert fhir.resources("Patient").search(family="Удаляева").fetch() == []


def test_conditional_delete(fhir: SyncFHIRClient) -> None:
    p = _save(fhir, factories.patient(family="Условнова"))
    _, status = fhir.resources("Patient").search(family="Условнова").delete()
    assert status == 200
    with pytest.raises(ResourceNotFound):
        fhir.get("Patient", p.id)


def test_fetch_all_pages_through_every_result(fhir: SyncFHIRClient) -> None:
    made = {_save(fhir, factories.patient(family="Постраничная")).id for _ in range(7)}
    _save(fhir, factories.patient(family="Чужая"))
    found = fhir.resources("Patient").search(family="Постраничная").limit(3).fetch_all()
    assert len(found) == 7
    assert {r.id for r in found} == made
    first = fhir.resources("Patient").search(family="Постраничная").limit(3).fetch()
    assert len(first) == 3


def test_transaction_through_execute(fhir: SyncFHIRClient) -> None:
    obs = factories.observation("x")
    obs["subject"] = {"reference": "urn:uuid:p"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:p", "resource": factories.patient(family="Пакетова"),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": obs, "request": {"method": "POST", "url": "Observation"}},
        ],
    }  # fmt: skip
    out = fhir.execute("/", data=bundle)
    assert [e.response.status for e in out.entry] == ["201 Created", "201 Created"]
    p = fhir.resources("Patient").search(family="Пакетова").get()
    assert [r.id for r in fhir.resources("Observation").search(patient=p.id).fetch()]


def test_conditional_create_with_query_parameters_is_refused_not_duplicated(
    fhir: SyncFHIRClient,
) -> None:
    p = _save(fhir, factories.patient(family="Единственная"))
    snils = p["identifier"][0]["value"]
    twin = fhir.resource("Patient", **{**factories.patient(), "identifier": p["identifier"]})
    with pytest.raises(OperationOutcome) as err:
        fhir.resources("Patient").search(identifier=snils).get_or_create(twin)
    assert "If-None-Exist" in str(err.value)
    assert len(fhir.resources("Patient").search(identifier=snils).fetch()) == 1


def test_invalid_resource_raises_operation_outcome(fhir: SyncFHIRClient) -> None:
    bad = fhir.resource("Observation", **{**factories.observation("x"), "status": "bogus"})
    with pytest.raises(OperationOutcome) as err:
        bad.save()
    assert "bogus" in str(err.value)


def test_missing_or_foreign_token_is_refused(
    live_server: str, fhir: SyncFHIRClient, token: Callable[..., str]
) -> None:
    anonymous = SyncFHIRClient(f"{live_server}/fhir")
    with pytest.raises(AuthorizationError):
        anonymous.resources("Patient").fetch()
    a = _save(fhir, factories.patient())
    b = _save(fhir, factories.patient())
    as_a = SyncFHIRClient(
        f"{live_server}/fhir", authorization=f"Bearer {token('patient/*.rs', patient=a.id)}"
    )
    assert [r.id for r in as_a.resources("Patient").fetch()] == [a.id]
    with pytest.raises(ResourceNotFound):
        as_a.get("Patient", b.id)


def test_count_through_the_client(fhir: SyncFHIRClient) -> None:
    for given in ("Ольга", "Олег", "Оксана"):
        _save(fhir, factories.patient(family="Счётова", given=given))
    assert fhir.resources("Patient").search(family="Счётова").count() == 3
