"""Bad input is refused with an OperationOutcome that names the problem, never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import Engine

from medcard import identifiers
from medcard.auth.tokens import TokenIssuer
from medcard.config import Settings
from medcard.web.app import create_app
from tests import factories
from tests.api.support import FHIR, Create, assert_outcome

JSON = {"Content-Type": FHIR}


def post_raw(client: TestClient, path: str, body: bytes, **headers: str) -> Any:
    return client.post(f"/fhir/{path}", content=body, headers={**JSON, **headers})


# -- the body -----------------------------------------------------------------------


def test_malformed_json_is_refused(client: TestClient) -> None:
    assert_outcome(post_raw(client, "Patient", b'{"resourceType": "Patient",'), 400, "JSON")


def test_body_that_is_not_utf8_is_refused(client: TestClient) -> None:
    assert_outcome(post_raw(client, "Patient", b'{"resourceType": "\xff\xfe"}'), 400, "JSON")


def test_empty_body_is_refused(client: TestClient) -> None:
    assert_outcome(post_raw(client, "Patient", b""), 400, "no body")


@pytest.mark.parametrize("body", [b"[]", b"null", b'"Patient"', b"42"])
def test_body_that_is_not_an_object_is_refused(client: TestClient, body: bytes) -> None:
    assert_outcome(post_raw(client, "Patient", body), 400, "object")


def test_missing_resource_type_is_refused(client: TestClient) -> None:
    body = {k: v for k, v in factories.patient().items() if k != "resourceType"}
    assert_outcome(client.post("/fhir/Patient", json=body), 400, "resourceType")


def test_unknown_resource_type_in_the_body_is_refused(client: TestClient) -> None:
    body = {**factories.patient(), "resourceType": "Patinet"}
    assert_outcome(client.post("/fhir/Patient", json=body), 400, "Patinet")


def test_resource_type_that_differs_from_the_url_is_refused(client: TestClient) -> None:
    org = factories.organization()
    assert_outcome(client.post("/fhir/Patient", json=org), 400, "Organization", "Patient")
    r = client.put("/fhir/Patient/x1", json={**org, "id": "x1"})
    assert_outcome(r, 400, "Organization")


def test_unknown_resource_type_in_the_url_is_not_found(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/Patinet/1"), 404, "Patinet")
    assert_outcome(client.post("/fhir/Patinet", json=factories.patient()), 404, "Patinet")
    assert_outcome(client.get("/fhir/Patinet"), 404, "Patinet")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"birthDate": "17.05.1980"}, ["birthDate"]),
        ({"gender": 5}, ["gender"]),
        ({"name": "Иванов Иван"}, ["name"]),
        ({"active": "yes"}, ["active"]),
        ({"favouriteColour": "blue"}, ["favouriteColour"]),
        ({"telecom": [{"system": "phone", "value": "+7 900", "rank": -1}]}, ["rank"]),
        ({"gender": "bogus"}, ["gender", "bogus"]),
    ],
)
def test_invalid_fields_are_refused_and_named(
    client: TestClient, change: dict[str, Any], words: list[str]
) -> None:
    assert_outcome(
        client.post("/fhir/Patient", json={**factories.patient(), **change}), 400, *words
    )


def test_bogus_status_is_refused(client: TestClient, create: Create) -> None:
    p = create(factories.patient())
    obs = {**factories.observation(p["id"]), "status": "bogus"}
    body = assert_outcome(client.post("/fhir/Observation", json=obs), 400, "status", "bogus")
    assert body["issue"][0]["code"] == "code-invalid"


def test_every_issue_of_an_invalid_resource_is_reported(client: TestClient) -> None:
    body = {**factories.patient(), "birthDate": "вчера", "gender": "bogus", "active": "yes"}
    outcome = assert_outcome(client.post("/fhir/Patient", json=body), 400)
    text = json.dumps(outcome, ensure_ascii=False)
    assert "birthDate" in text
    assert "active" in text
    assert "bogus" in text


def test_nothing_is_stored_when_validation_fails(client: TestClient) -> None:
    client.post("/fhir/Patient", json={**factories.patient(), "gender": "bogus"})
    assert client.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 0


# -- update --------------------------------------------------------------------------


def test_update_with_an_id_that_differs_from_the_url_is_refused(
    client: TestClient, create: Create
) -> None:
    p = create(factories.patient())
    r = client.put(f"/fhir/Patient/{p['id']}", json={**p, "id": "other"})
    assert_outcome(r, 400, "other", p["id"])
    assert client.get(f"/fhir/Patient/{p['id']}").json()["meta"]["versionId"] == "1"


def test_update_without_an_id_in_the_body_is_refused(client: TestClient, create: Create) -> None:
    p = create(factories.patient())
    body = {k: v for k, v in p.items() if k != "id"}
    assert_outcome(client.put(f"/fhir/Patient/{p['id']}", json=body), 400, "id")


@pytest.mark.parametrize("rid", ["x" * 65, "bad id!", "кириллица", "a/b"])
def test_update_with_an_invalid_id_is_refused(client: TestClient, rid: str) -> None:
    r = client.put(f"/fhir/Patient/{rid}", json={**factories.patient(), "id": rid})
    assert r.status_code in (400, 404), r.text
    assert_outcome(r, r.status_code)
    assert client.get(f"/fhir/Patient/{rid}").status_code == 404
    assert client.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 0


def test_malformed_if_match_is_refused(client: TestClient, create: Create) -> None:
    p = create(factories.patient())
    r = client.put(f"/fhir/Patient/{p['id']}", json=p, headers={"If-Match": "yesterday"})
    assert_outcome(r, 400, "If-Match")


def test_update_of_a_resource_type_without_an_id_in_the_url(client: TestClient) -> None:
    r = client.put("/fhir/Patient", json=factories.patient())
    assert r.status_code in (400, 405)
    assert_outcome(r, r.status_code, "Patient")


def test_conditional_create_with_malformed_criteria_is_refused(client: TestClient) -> None:
    r = client.post(
        "/fhir/Patient", json=factories.patient(), headers={"If-None-Exist": "shoe-size=44"}
    )
    assert_outcome(r, 400, "shoe-size")
    assert client.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 0


# -- size and content type -----------------------------------------------------------


@pytest.fixture
def small_app(settings: Settings, engine: Engine) -> Any:
    """The same store and signing key, but a 2 KiB request-body limit."""
    return create_app(settings.model_copy(update={"max_body_bytes": 2048}), engine)


@pytest.fixture
def small_client(small_app: Any, token: Callable[..., str]) -> Iterator[TestClient]:
    with TestClient(small_app) as c:
        c.headers["Authorization"] = f"Bearer {token()}"
        yield c


def test_oversized_body_is_refused_with_413(small_client: TestClient) -> None:
    body = factories.patient(name=[{"family": "Ы" * 4000}])
    r = small_client.post("/fhir/Patient", json=body)
    assert_outcome(r, 413, "2048")
    ok = small_client.post("/fhir/Patient", json=factories.patient())
    assert ok.status_code == 201, ok.text


def test_oversized_body_without_content_length_is_refused_with_413(
    small_client: TestClient,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"resourceType": "Patient", "name": [{"family": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}]}'

    r = small_client.post("/fhir/Patient", content=chunks(), headers=JSON)
    assert_outcome(r, 413, "exceeds")
    assert small_client.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 0


@pytest.mark.parametrize("ctype", ["application/xml", "text/plain", "application/fhir+xml"])
def test_unsupported_content_type_is_refused_with_415(client: TestClient, ctype: str) -> None:
    body = json.dumps(factories.patient()).encode()
    assert_outcome(post_raw(client, "Patient", body, **{"Content-Type": ctype}), 415, ctype)


def test_json_with_charset_is_accepted(client: TestClient) -> None:
    body = json.dumps(factories.patient()).encode()
    ctype = "application/fhir+json; charset=utf-8"
    r = post_raw(client, "Patient", body, **{"Content-Type": ctype})
    assert r.status_code == 201, r.text


# -- search input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "word"),
    [
        ("Patient", {"birthdate": "17.05.1980"}, "17.05.1980"),
        ("Patient", {"birthdate": "ge2024-02-30"}, "2024-02-30"),
        ("Patient", {"birthdate": "gtyesterday"}, "gtyesterday"),
        ("Patient", {"_lastUpdated": "2024-01-01T25:00:00Z"}, "2024-01-01T25:00:00Z"),
        ("Observation", {"value-quantity": "lots"}, "lots"),
        ("Observation", {"value-quantity": "gt1,0x|g/L"}, "0x"),
        ("Observation", {"value-quantity": "ap"}, "ap"),
        ("RiskAssessment", {"probability": "high"}, "high"),
        ("RiskAssessment", {"probability": "1e"}, "1e"),
        ("Patient", {"_count": "1e3"}, "_count"),
        ("Patient", {"_count": "100000"}, "_count"),
        ("Patient", {"_offset": "-5"}, "_offset"),
        ("Patient/_history", {"_since": "last week"}, "_since"),
        ("Patient/_history", {"_count": "x"}, "_count"),
        ("AuditEvent", {"date": "ge31.12.2024"}, "31.12.2024"),
        ("AuditEvent", {"_count": "x"}, "x"),
        ("AuditEvent", {"site": "x"}, "site"),
        ("AuditEvent", {"_sort": "outcome"}, "outcome"),
    ],
)
def test_bad_dates_and_numbers_in_search_are_refused(
    client: TestClient, path: str, params: dict[str, str], word: str
) -> None:
    assert_outcome(client.get(f"/fhir/{path}", params=params), 400, word)


def test_everything_with_a_bad_since_is_refused(client: TestClient, create: Create) -> None:
    p = create(factories.patient())
    r = client.get(f"/fhir/Patient/{p['id']}/$everything", params={"_since": "вчера"})
    assert_outcome(r, 400, "_since")
    r = client.get(f"/fhir/Patient/{p['id']}/$everything", params={"_type": "Nonsense"})
    assert_outcome(r, 404, "Nonsense")


# -- tokens --------------------------------------------------------------------------


def _anonymous(app: Any, auth: str | None) -> Any:
    with TestClient(app) as anon:
        headers = {"Authorization": auth} if auth is not None else {}
        return anon.get("/fhir/Patient", headers=headers)


def test_expired_token_is_refused_with_401(app: Any, token: Callable[..., str]) -> None:
    r = _anonymous(app, f"Bearer {token(lifetime=-60)}")
    body = assert_outcome(r, 401, "expired")
    assert body["issue"][0]["code"] == "login"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_signed_by_another_key_is_refused_with_401(app: Any, settings: Settings) -> None:
    other = TokenIssuer(
        ECKey.generate_key("P-256", parameters={"kid": "other"}), settings.token_issuer
    )
    forged = other.mint("system:test", "system/*.*")
    assert_outcome(_anonymous(app, f"Bearer {forged}"), 401, "token")


def test_token_with_a_tampered_payload_is_refused_with_401(
    app: Any, token: Callable[..., str]
) -> None:
    header, payload, signature = token("patient/*.rs", patient="p1").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "system/*.*"
    claims.pop("patient")
    raw = json.dumps(claims).encode()
    forged_payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    r = _anonymous(app, f"Bearer {header}.{forged_payload}.{signature}")
    assert_outcome(r, 401, "signature")


def test_unsigned_token_is_refused_with_401(app: Any) -> None:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none'})}.{b64({'sub': 'x', 'scope': 'system/*.*', 'iss': 'medcard', 'exp': 2**40})}."
    assert_outcome(_anonymous(app, f"Bearer {unsigned}"), 401, "token")


def test_token_from_another_issuer_is_refused_with_401(app: Any, settings: Settings) -> None:
    key = ECKey.import_key(json.loads(Path(settings.signing_key_path).read_text()))
    stranger = TokenIssuer(key, "someone-else").mint("system:test", "system/*.*")
    assert_outcome(_anonymous(app, f"Bearer {stranger}"), 401, "token")


def test_token_without_a_subject_is_refused_with_401(app: Any, settings: Settings) -> None:
    key = ECKey.import_key(json.loads(Path(settings.signing_key_path).read_text()))
    claims = {"iss": settings.token_issuer, "exp": 2**40, "scope": "system/*.*"}
    no_sub = jwt.encode({"alg": "ES256"}, claims, key, algorithms=["ES256"])
    assert_outcome(_anonymous(app, f"Bearer {no_sub}"), 401, "token")


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer abc",
        "Bearer a.b.c",
        "Bearer ....",
    ],
)
def test_missing_or_garbled_token_is_refused_with_401(app: Any, auth: str | None) -> None:
    assert_outcome(_anonymous(app, auth), 401)


def test_out_of_scope_requests_are_refused_with_403(
    client: TestClient, create: Create, token: Callable[..., str]
) -> None:
    p = create(factories.patient())
    only_obs = {"Authorization": f"Bearer {token('patient/Observation.rs', patient=p['id'])}"}
    assert_outcome(client.get("/fhir/Condition", headers=only_obs), 403, "Condition")
    r = client.post("/fhir/Observation", json=factories.observation(p["id"]), headers=only_obs)
    assert_outcome(r, 403, "Observation")
    reader = {"Authorization": f"Bearer {token('user/*.rs')}"}
    assert_outcome(
        client.post("/fhir/Patient", json=factories.patient(), headers=reader), 403, "create"
    )
    assert_outcome(client.delete(f"/fhir/Patient/{p['id']}", headers=reader), 403, "delete")
    assert client.get(f"/fhir/Patient/{p['id']}").status_code == 200


def test_token_with_no_usable_scope_is_refused_with_403(
    client: TestClient, token: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token('openid fhirUser patient/Observation.rrr')}"}
    assert_outcome(client.get("/fhir/Observation", headers=headers), 403, "scope")


# -- Russian identifiers -------------------------------------------------------------


def test_invalid_snils_is_refused(client: TestClient) -> None:
    p = factories.patient()
    good = p["identifier"][0]["value"]
    bad = good[:-2] + f"{(int(good[-2:]) + 1) % 100:02d}"
    p["identifier"][0]["value"] = bad
    r = client.post("/fhir/Patient", json=p)
    assert r.status_code in (400, 422)
    assert_outcome(r, r.status_code, "SNILS", bad)
    assert client.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 0


def test_snils_of_the_wrong_length_is_refused(client: TestClient) -> None:
    p = factories.patient()
    p["identifier"][0]["value"] = "123"
    r = client.post("/fhir/Patient", json=p)
    assert r.status_code in (400, 422)
    assert_outcome(r, r.status_code, "SNILS")


def test_enp_with_a_wrong_check_digit_is_accepted_with_a_warning(client: TestClient) -> None:
    good = identifiers.make_enp("770000000000001")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    p = factories.patient()
    p["identifier"].append({"system": identifiers.ENP_SYSTEM, "value": bad})
    r = client.post("/fhir/Patient", json=p, headers={"Prefer": "return=OperationOutcome"})
    assert r.status_code == 201, r.text
    issues = r.json()["issue"]
    warnings = [i for i in issues if i["severity"] == "warning"]
    assert len(warnings) == 1
    assert bad in warnings[0]["diagnostics"]
    assert warnings[0]["expression"] == ["Patient.identifier[1].value"]
    stored = client.get(r.headers["Location"].split("/_history")[0]).json()
    assert stored["identifier"][1]["value"] == bad


def test_enp_with_a_right_check_digit_has_no_warning(client: TestClient) -> None:
    p = factories.patient()
    p["identifier"].append(
        {"system": identifiers.ENP_SYSTEM, "value": identifiers.make_enp("770000000000001")}
    )
    r = client.post("/fhir/Patient", json=p, headers={"Prefer": "return=OperationOutcome"})
    assert r.status_code == 201, r.text
    assert [i["severity"] for i in r.json()["issue"]] == ["information"]


def test_enp_that_is_not_sixteen_digits_is_refused(client: TestClient) -> None:
    p = factories.patient()
    p["identifier"].append({"system": identifiers.ENP_SYSTEM, "value": "77000000000000A1"})
    r = client.post("/fhir/Patient", json=p)
    assert r.status_code in (400, 422)
    assert_outcome(r, r.status_code, "ENP")


# -- never a 500 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("GET", "Patient/x/_history/abc", None, {}),
        ("GET", "Patient/x/_history/1/extra", None, {}),
        ("GET", "Patient/%00", None, {}),
        ("GET", "Patient?name=%ZZ", None, {}),
        ("GET", "Patient?_id=" + "x" * 5000, None, {}),
        ("GET", "Patient?family=" + "я" * 1000, None, {}),
        ("GET", "Patient?_sort=", None, {}),
        ("GET", "Patient?_include=*", None, {}),
        ("GET", "Patient/$everything", None, {}),
        ("GET", "Patient/x/$validate", None, {}),
        ("POST", "Patient/x", b"{}", {}),
        ("PATCH", "Patient/x", b"[]", {"Content-Type": "application/json-patch+json"}),
        ("DELETE", "Patient", None, {}),
        ("PUT", "Patient?identifier=", b'{"resourceType":"Patient"}', {}),
        ("POST", "", b'{"resourceType":"Patient"}', {}),
        ("POST", "", b'{"resourceType":"Bundle","type":"collection"}', {}),
        ("POST", "", b'{"resourceType":"Bundle","type":"batch","entry":{}}', {}),
        ("POST", "", b'{"resourceType":"Bundle","type":"transaction","entry":[1]}', {}),
        (
            "POST",
            "",
            b'{"resourceType":"Bundle","type":"transaction","entry":[{"request":{}}]}',
            {},
        ),
        (
            "POST",
            "",
            b'{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Patient"}}]}',
            {},
        ),
        (
            "POST",
            "",
            b'{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},'
            b'"request":{"method":"POST","url":""}}]}',
            {},
        ),
        ("POST", "Patient", b'{"resourceType":"Patient","name":[{"family":{"a":1}}]}', {}),
        ("POST", "Patient", b'{"resourceType":"Patient","id":123}', {}),
        ("POST", "Patient", b'{"resourceType":"Patient","meta":"x"}', {}),
        (
            "POST",
            "Patient",
            b'{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.643.100.3","value":1}]}',
            {},
        ),
        (
            "POST",
            "Patient",
            b'{"resourceType":"Patient","birthDate":"1980-05-17' + b"0" * 50 + b'"}',
            {},
        ),
        (
            "POST",
            "Patient",
            b'{"resourceType":"Patient","extension":[' * 300 + b"]" * 300 + b"}",
            {},
        ),
        (
            "POST",
            "Observation",
            b'{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":1e400}}',
            {},
        ),
        ("POST", "Patient", b'{"resourceType":"Patient"}', {"If-None-Exist": "%%%"}),
        ("POST", "Patient", b'{"resourceType":"Patient"}', {"Prefer": "return=nonsense"}),
        ("PUT", "Patient/x", b'{"resourceType":"Patient","id":"x"}', {"If-Match": 'W/"abc"'}),
        (
            "PUT",
            "Patient/" + "x" * 100,
            b'{"resourceType":"Patient","id":"' + b"x" * 100 + b'"}',
            {},
        ),
        ("GET", "AuditEvent/not-a-number", None, {}),
        ("GET", "AuditEvent?patient=%00", None, {}),
        ("GET", "Patient?_id=%00", None, {}),
        ("GET", "Patient?family=a%00b", None, {}),
        ("GET", "Observation?value-quantity=nan", None, {}),
        ("GET", "RiskAssessment?probability=inf", None, {}),
        ("GET", "Patient/x/_history/99999999999999999999", None, {}),
        ("GET", "Patient/" + "x" * 65, None, {}),
        ("GET", "Patient/" + "x" * 65 + "/_history", None, {}),
        ("DELETE", "Patient/%00", None, {}),
        ("POST", "Patient", b'{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}', {}),
        ("POST", "Patient", b'{"resourceType":"Patient","name":[{"family":"a\\\\u0000b"}]}', {}),
        ("POST", "Patient", b'{"resourceType":"Patient","extension\\u0000":[]}', {}),
        ("DELETE", "AuditEvent/1", None, {}),
        ("GET", "_history?_since=x", None, {}),
    ],
)
def test_never_a_500(
    client: TestClient, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> None:
    r = client.request(method, f"/fhir/{path}", content=body, headers={**JSON, **headers})
    assert 400 <= r.status_code < 500 or r.status_code in (200, 201), r.text
    if r.status_code >= 400:
        assert_outcome(r, r.status_code)
