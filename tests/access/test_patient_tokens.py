"""Issue 17: a token that acts for a patient is a patient, however it was minted.

Generated over every way a token can be minted for someone acting on a card (the CLI
with and without ``--role``, the OAuth code flow as a patient and as a parent for a
child, a refreshed token, a laboratory's client credentials) times every write
interaction on a clinician's entry in that card: all refused, the stored entry and its
history unchanged, every refusal audited.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from medcard.access.policy import entered_by_patient
from medcard.audit.recorder import DENIED
from medcard.auth import accounts
from medcard.auth.oauth.clients import create_client
from medcard.cli.main import app as cli
from medcard.config import Settings
from medcard.db.tables import audit_log
from medcard.identifiers import SNILS_SYSTEM
from tests import factories
from tests.oauth.conftest import DIARY_REDIRECT, authorize, exchange, sign_in

FHIR = "application/fhir+json"
APP_SCOPE = "launch/patient offline_access patient/*.cruds"
V3 = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


@dataclass(frozen=True)
class Card:
    parent: str
    child: str
    # A clinician's result in each card: performer a Practitioner, no patient tag.
    parent_entry: str
    child_entry: str


def _post(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def card(client: TestClient) -> Card:
    parent = factories.patient(family="Соколова", given="Ирина", gender="female")
    parent_id = _post(client, parent)
    child_id = _post(
        client, factories.patient(family="Соколов", given="Лев", birthDate="2019-06-01")
    )
    _post(
        client,
        {
            "resourceType": "RelatedPerson",
            "active": True,
            "patient": {"reference": f"Patient/{child_id}"},
            "identifier": [{"system": SNILS_SYSTEM, "value": parent["identifier"][0]["value"]}],
            "relationship": [{"coding": [{"system": V3, "code": "MTH"}]}],
            "name": [{"family": "Соколова", "given": ["Ирина"]}],
        },
    )
    doctor = _post(
        client,
        {"resourceType": "Practitioner", "name": [{"family": "Врачев", "given": ["Пётр"]}]},
    )

    def entry(pid: str) -> str:
        obs = factories.observation(pid, identifier=[{"system": "urn:lab", "value": f"r-{pid}"}])
        obs["performer"] = [{"reference": f"Practitioner/{doctor}"}]
        return _post(client, obs)

    return Card(parent_id, child_id, entry(parent_id), entry(child_id))


# -- the ways a token is minted --------------------------------------------------------


@dataclass(frozen=True)
class Minted:
    token: str
    actor: str  # who the audit names
    target: str  # the card whose clinician entry is attacked: "parent" or "child"


@pytest.fixture
def api(app: Any) -> Iterator[TestClient]:
    """No credentials: how apps call the token endpoint."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


@pytest.fixture
def run(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MEDCARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MEDCARD_DATABASE_URL", settings.resolved_database_url)
    return CliRunner()


def _cli(run: CliRunner, *args: str) -> str:
    result = run.invoke(cli, ["token", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.fixture
def oauth_grant(app: Any, engine: Engine, card: Card, api: TestClient) -> Iterator[dict[str, Any]]:
    """The parent allowed an app every patient/ scope (with offline_access), for their
    own card."""
    yield from _parent_grant(app, engine, card, api, "")


@pytest.fixture
def oauth_child_grant(
    app: Any, engine: Engine, card: Card, api: TestClient
) -> Iterator[dict[str, Any]]:
    """The same, the parent having picked the child's card (issue 22's patient picker)."""
    yield from _parent_grant(app, engine, card, api, card.child)


def _parent_grant(
    app: Any, engine: Engine, card: Card, api: TestClient, patient: str
) -> Iterator[dict[str, Any]]:
    client, _ = create_client(
        engine, "Приложение", public=True, redirect_uris=[DIARY_REDIRECT], scope=APP_SCOPE
    )
    account = accounts.create_account(
        engine,
        "sokolova@example.ru",
        "длинный пароль для теста 42",
        "patient",
        display_name="Ирина Соколова",
        fhir_ref=f"Patient/{card.parent}",
    )
    browser = sign_in(app, engine, account)
    with browser.http:
        auth = authorize(browser, client.client_id, scope=APP_SCOPE, patient=patient)
        r = exchange(api, client.client_id, auth)
        assert r.status_code == 200, r.text
        yield {**r.json(), "client_id": client.client_id}


def _lab_token(engine: Engine, api: TestClient) -> str:
    _, secret = create_client(
        engine,
        "Лаборатория",
        public=False,
        scope="system/Observation.cruds",
        organization_ref="Organization/lab-17",
        client_id="lab-17",
    )
    basic = base64.b64encode(f"lab-17:{secret}".encode()).decode()
    r = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


MINTERS = [
    "cli-patient-no-role",
    "cli-patient-role-patient",
    "cli-patient-default-scope",
    "cli-patient-subject-only",
    "oauth-code-patient",
    "oauth-code-parent-for-child",
    "oauth-refresh",
    "client-credentials-lab",
]


@pytest.fixture(params=MINTERS)
def minted(
    request: pytest.FixtureRequest,
    run: CliRunner,
    card: Card,
    engine: Engine,
    api: TestClient,
) -> Minted:
    way = request.param
    me = f"Patient/{card.parent}"
    if way == "cli-patient-no-role":
        return Minted(
            _cli(run, "--patient", card.parent, "--scope", "patient/*.cruds"), me, "parent"
        )
    if way == "cli-patient-role-patient":
        token = _cli(
            run, "--patient", card.parent, "--role", "patient", "--scope", "patient/*.cruds"
        )
        return Minted(token, me, "parent")
    if way == "cli-patient-default-scope":
        return Minted(_cli(run, "--patient", card.parent), me, "parent")
    if way == "cli-patient-subject-only":
        # a subject naming the patient, no role, no patient claim, system scopes
        return Minted(_cli(run, "--subject", me, "--scope", "system/*.*"), me, "parent")
    if way == "client-credentials-lab":
        return Minted(_lab_token(engine, api), "Client/lab-17", "parent")
    if way == "oauth-code-parent-for-child":
        child: dict[str, Any] = request.getfixturevalue("oauth_child_grant")
        assert child["patient"] == card.child
        return Minted(child["access_token"], me, "child")
    grant: dict[str, Any] = request.getfixturevalue("oauth_grant")
    if way == "oauth-code-patient":
        return Minted(grant["access_token"], me, "parent")
    assert way == "oauth-refresh"
    r = api.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
            "client_id": grant["client_id"],
        },
    )
    assert r.status_code == 200, r.text
    return Minted(r.json()["access_token"], me, "parent")


# -- the write interactions ------------------------------------------------------------

Attack = Callable[[TestClient, dict[str, str], dict[str, Any]], Any]


def _changed(entry: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in entry.items() if k != "meta"}
    return {**body, "status": "cancelled"}


def _bundle(kind: str, request: dict[str, Any], resource: dict[str, Any] | None = None) -> Any:
    item: dict[str, Any] = {"request": request}
    if resource is not None:
        item["resource"] = resource
    return {"resourceType": "Bundle", "type": kind, "entry": [item]}


def _url(entry: dict[str, Any]) -> str:
    return f"Observation/{entry['id']}"


ATTACKS: dict[str, Attack] = {
    "update": lambda c, h, e: c.put(f"/fhir/{_url(e)}", json=_changed(e), headers=h),
    "update-if-match": lambda c, h, e: c.put(
        f"/fhir/{_url(e)}", json=_changed(e), headers={**h, "If-Match": 'W/"1"'}
    ),
    "patch": lambda c, h, e: c.patch(
        f"/fhir/{_url(e)}",
        json=[{"op": "replace", "path": "/status", "value": "cancelled"}],
        headers={**h, "Content-Type": "application/json-patch+json"},
    ),
    "delete": lambda c, h, e: c.delete(f"/fhir/{_url(e)}", headers=h),
    "conditional-update": lambda c, h, e: c.put(
        f"/fhir/Observation?_id={e['id']}", json=_changed(e), headers=h
    ),
    "conditional-delete": lambda c, h, e: c.delete(f"/fhir/Observation?_id={e['id']}", headers=h),
    "transaction-put": lambda c, h, e: c.post(
        "/fhir",
        json=_bundle("transaction", {"method": "PUT", "url": _url(e)}, _changed(e)),
        headers=h,
    ),
    "transaction-delete": lambda c, h, e: c.post(
        "/fhir", json=_bundle("transaction", {"method": "DELETE", "url": _url(e)}), headers=h
    ),
    "batch-put": lambda c, h, e: c.post(
        "/fhir", json=_bundle("batch", {"method": "PUT", "url": _url(e)}, _changed(e)), headers=h
    ),
    "batch-delete": lambda c, h, e: c.post(
        "/fhir", json=_bundle("batch", {"method": "DELETE", "url": _url(e)}), headers=h
    ),
}


def _refused(r: Any) -> bool:
    """A refusal: a 4xx OperationOutcome, or a batch whose one entry answered 4xx."""
    if r.status_code >= 500:
        return False
    if r.status_code >= 400:
        return bool(r.json().get("resourceType") == "OperationOutcome")
    body = r.json()
    if body.get("type") == "batch-response":
        status = body["entry"][0]["response"]["status"]
        return status[:1] == "4"
    return False


def _denials(engine: Engine, actor: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(audit_log)
                .where(audit_log.c.actor == actor, audit_log.c.outcome == DENIED)
            ).scalar_one()
        )


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_no_token_acting_on_a_card_changes_a_clinicians_entry(
    client: TestClient, engine: Engine, card: Card, minted: Minted, attack: str
) -> None:
    entry_id = card.parent_entry if minted.target == "parent" else card.child_entry
    before = client.get(f"/fhir/Observation/{entry_id}").json()
    history = client.get(f"/fhir/Observation/{entry_id}/_history").json()["total"]
    denied = _denials(engine, minted.actor)
    headers = {"Authorization": f"Bearer {minted.token}", "Accept": FHIR, "Content-Type": FHIR}

    r = ATTACKS[attack](client, headers, before)

    assert _refused(r), f"{attack} with {minted}: {r.status_code} {r.text[:300]}"
    after = client.get(f"/fhir/Observation/{entry_id}")
    assert after.status_code == 200
    assert after.json() == before
    assert client.get(f"/fhir/Observation/{entry_id}/_history").json()["total"] == history
    if attack != "patch":  # PATCH is no interaction of this server: 405 for everyone
        assert _denials(engine, minted.actor) > denied, "the refusal is audited"


@pytest.mark.parametrize("way", ["cli-patient-no-role", "oauth-code-patient"])
def test_what_a_patient_token_creates_is_marked_as_the_patients(
    request: pytest.FixtureRequest, client: TestClient, card: Card, way: str
) -> None:
    """Creating is allowed (the diary); the entry is the patient's, whatever it claims."""
    token = (
        request.getfixturevalue("oauth_grant")["access_token"]
        if way.startswith("oauth")
        else _cli(
            request.getfixturevalue("run"), "--patient", card.parent, "--scope", "patient/*.cruds"
        )
    )
    forged = factories.observation(card.parent)
    forged["meta"] = {
        "tag": [
            {"system": "https://medcard.example/fhir/CodeSystem/entered-by", "code": "clinician"}
        ]
    }
    r = client.post(
        "/fhir/Observation",
        json=forged,
        headers={"Authorization": f"Bearer {token}", "Content-Type": FHIR},
    )
    assert r.status_code == 201, r.text
    stored = client.get(f"/fhir/Observation/{r.json()['id']}").json()
    assert entered_by_patient(stored)
    tags = stored["meta"]["tag"]
    assert [t["code"] for t in tags if t["system"].endswith("entered-by")] == ["patient"]


# -- contradictory claims ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "extra"),
    [
        ("Patient/p1", {"role": "practitioner"}),
        ("Patient/p1", {"role": "system"}),
        ("Practitioner/d1", {"role": "patient"}),
        ("Client/app", {"role": "patient"}),
        ("Practitioner/d1", {}),
        ("Client/app", {"role": "system", "patient": "p1"}),
    ],
)
def test_contradictory_claims_are_refused_and_audited(
    client: TestClient,
    engine: Engine,
    token: Callable[..., str],
    subject: str,
    extra: dict[str, Any],
) -> None:
    bad = token("patient/*.cruds system/*.cruds", subject=subject, extra=extra)
    before = _denials(engine, "anonymous")
    r = client.get("/fhir/Observation", headers={"Authorization": f"Bearer {bad}"})
    assert r.status_code == 401, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert _denials(engine, "anonymous") == before + 1


def test_cli_refuses_a_patient_token_with_system_scopes(run: CliRunner) -> None:
    result = run.invoke(cli, ["token", "--patient", "p1", "--scope", "system/*.*"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())
    assert "gets the patient rules" in said
    contradictory = run.invoke(cli, ["token", "--subject", "Patient/p1", "--role", "practitioner"])
    assert contradictory.exit_code == 2


def test_cli_patient_token_defaults_to_reading_the_patients_card(
    run: CliRunner, client: TestClient, card: Card
) -> None:
    token = _cli(run, "--patient", card.parent)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/fhir/Observation/{card.parent_entry}", headers=headers).status_code == 200
    # no dependants in a CLI token: the child's card is not in its compartment
    assert client.get(f"/fhir/Observation/{card.child_entry}", headers=headers).status_code == 404
    r = client.post("/fhir/Observation", json=factories.observation(card.parent), headers=headers)
    assert r.status_code == 403  # patient/*.rs: reading only


# -- hidden answers as missing -----------------------------------------------------------


def test_writes_on_another_card_answer_as_for_a_missing_id(
    client: TestClient, engine: Engine, card: Card, token: Callable[..., str]
) -> None:
    stranger = _post(client, factories.patient(family="Чужов", given="Олег"))
    headers = {
        "Authorization": f"Bearer {token('patient/*.cruds', patient=stranger)}",
        "Content-Type": FHIR,
    }
    hidden = client.get(f"/fhir/Observation/{card.parent_entry}").json()
    body = {k: v for k, v in hidden.items() if k != "meta"}
    missing = {**body, "id": "no-such-entry", "subject": {"reference": f"Patient/{stranger}"}}
    own = {**body, "subject": {"reference": f"Patient/{stranger}"}}
    for verb, path, payload in [
        ("PUT", f"Observation/{card.parent_entry}", own),
        ("PUT", "Observation/no-such-entry", missing),
    ]:
        r = client.request(verb, f"/fhir/{path}", json=payload, headers=headers)
        assert r.status_code == 404, r.text
        assert "is not known" in r.json()["issue"][0]["diagnostics"]
    with_match = {**headers, "If-Match": 'W/"1"'}
    a = client.put(f"/fhir/Observation/{card.parent_entry}", json=own, headers=with_match)
    b = client.put("/fhir/Observation/no-such-entry", json=missing, headers=with_match)
    assert a.status_code == b.status_code == 412
    assert (
        client.delete(f"/fhir/Observation/{card.parent_entry}", headers=headers).status_code == 404
    )
    assert client.get(f"/fhir/Observation/{card.parent_entry}").json() == hidden
