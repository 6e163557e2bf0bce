"""``medcard clients`` registers apps and systems; discovery tells apps where to go."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import Engine
from typer.testing import CliRunner

from medcard.auth.oauth.clients import get_client
from medcard.cli.main import app as cli
from medcard.config import Settings
from tests.oauth.conftest import Browser, authorize, bearer, exchange


@pytest.fixture
def run(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MEDCARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MEDCARD_DATABASE_URL", settings.resolved_database_url)
    return CliRunner()


def _value(output: str, key: str) -> str:
    line = next(x for x in output.splitlines() if x.startswith(f"{key}="))
    return line.split("=", 1)[1]


def test_cli_registers_a_patient_app_that_completes_the_flow(
    run: CliRunner, engine: Engine, anna: Browser, api: TestClient, patients: dict[str, str]
) -> None:
    result = run.invoke(
        cli,
        [
            "clients", "create", "Дневник самочувствия", "--public",
            "--redirect-uri", "https://diary.example/callback",
            "--scope", "launch/patient offline_access patient/Observation.crs",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    client_id = _value(result.output, "client_id")
    assert "client_secret=" not in result.output
    assert get_client(engine, client_id) is not None

    body = exchange(api, client_id, authorize(anna, client_id)).json()
    assert body["patient"] == patients["anna"]
    r = api.get(
        f"/fhir/Observation?patient={patients['anna']}", headers=bearer(body["access_token"])
    )
    assert r.status_code == 200

    listed = run.invoke(cli, ["clients", "list"])
    assert listed.exit_code == 0
    assert client_id in listed.output

    revoked = run.invoke(cli, ["clients", "revoke", client_id])
    assert revoked.exit_code == 0, revoked.output
    assert get_client(engine, client_id) is None
    assert run.invoke(cli, ["clients", "revoke", client_id]).exit_code == 1


def test_cli_registers_a_lab_whose_secret_is_shown_once(
    run: CliRunner, api: TestClient, engine: Engine
) -> None:
    result = run.invoke(
        cli,
        ["clients", "create", "Лаборатория", "--scope", "system/Observation.cu",
         "--organization", "Organization/lab-1", "--client-id", "lab-1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    secret = _value(result.output, "client_secret")
    client = get_client(engine, "lab-1")
    assert client is not None
    assert client.secret_hash is not None
    assert secret not in client.secret_hash
    auth = base64.b64encode(f"lab-1:{secret}".encode()).decode()
    r = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {auth}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "system/Observation.cu"
    assert secret not in run.invoke(cli, ["clients", "list"]).output


def test_cli_refuses_unsafe_registrations(run: CliRunner) -> None:
    result = run.invoke(
        cli,
        ["clients", "create", "Приложение", "--public", "--grant", "client_credentials",
         "--scope", "system/*.rs"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "confidential" in result.output


@pytest.mark.parametrize(
    "path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"]
)
def test_smart_configuration(api: TestClient, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    conf = r.json()
    base = "http://testserver"
    assert conf["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert conf["token_endpoint"] == f"{base}/oauth/token"
    assert conf["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert conf["introspection_endpoint"] == f"{base}/oauth/introspect"
    assert conf["code_challenge_methods_supported"] == ["S256"]
    assert set(conf["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "refresh_token",
    }
    assert {"client_secret_basic", "client_secret_post"} <= set(
        conf["token_endpoint_auth_methods_supported"]
    )
    assert conf["response_types_supported"] == ["code"]
    for capability in (
        "launch-standalone", "client-public", "client-confidential-symmetric",
        "context-standalone-patient", "permission-patient", "permission-v2", "permission-offline",
    ):  # fmt: skip
        assert capability in conf["capabilities"]
    assert "launch/patient" in conf["scopes_supported"]


def test_jwks_verifies_issued_tokens(api: TestClient, full_grant: dict[str, str]) -> None:
    conf = api.get("/.well-known/smart-configuration").json()
    keys = api.get(conf["jwks_uri"].removeprefix("http://testserver")).json()["keys"]
    assert all("d" not in k for k in keys)
    key = ECKey.import_key(keys[0])
    claims = jwt.decode(full_grant["access_token"], key, algorithms=["ES256"]).claims
    assert claims["scope"] == full_grant["scope"]


def test_token_endpoint_answers_no_browser_unless_origins_are_configured(
    api: TestClient,
) -> None:
    # MEDCARD_CORS_ORIGINS is empty by default: see tests/oauth/test_cors.py.
    r = api.options(
        "/oauth/token",
        headers={"Origin": "https://diary.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers
    posted = api.post(
        "/oauth/token", data={"grant_type": "x"}, headers={"Origin": "https://diary.example"}
    )
    assert "access-control-allow-origin" not in posted.headers
    # Discovery stays public.
    conf = api.get("/.well-known/smart-configuration", headers={"Origin": "https://a.example"})
    assert conf.headers["access-control-allow-origin"] == "*"


def test_purge_deletes_only_long_expired_codes_and_tokens(
    run: CliRunner, full_grant: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import func, select

    from medcard import clock
    from medcard.db.tables import oauth_codes, oauth_tokens

    def count() -> int:
        with engine.connect() as conn:
            codes = conn.execute(select(func.count()).select_from(oauth_codes)).scalar_one()
            tokens = conn.execute(select(func.count()).select_from(oauth_tokens)).scalar_one()
        return int(codes + tokens)

    assert count() == 3  # the code, the access token, the refresh token
    assert run.invoke(cli, ["clients", "purge"]).exit_code == 0
    assert count() == 3
    later = clock.now_micros() + 2 * 3600 * 1_000_000  # code and access token long expired
    monkeypatch.setattr(clock, "now_micros", lambda: later)
    result = run.invoke(cli, ["clients", "purge", "--grace-hours", "1"])
    assert result.exit_code == 0, result.output
    assert count() == 1  # the refresh token lives on
