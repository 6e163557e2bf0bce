"""Refused bearer tokens at /fhir are audited (issue 3): one ``login`` entry per 401,
actor anonymous, outcome 4, the reason in the detail and never the token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard.auth.tokens import TokenIssuer
from medcard.db.tables import audit_log
from tests.oauth.conftest import FHIR


def login_entries(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log).where(audit_log.c.interaction == "login").order_by(audit_log.c.id)
        ).all()
    return list(rows)


def _tampered(issuer: TokenIssuer) -> str:
    header, payload, signature = issuer.mint("system:test", "system/*.*").split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    return f"{header}.{payload}.{flipped}"


CASES: dict[str, tuple[Callable[[TokenIssuer], str | None], str]] = {
    "missing": (lambda _: None, "bearer access token is required"),
    "not bearer": (lambda _: "Basic dXNlcjpwYXNz", "bearer access token is required"),
    "garbage": (lambda _: "Bearer not-a-jwt-at-all-0123456789", "not valid"),
    "tampered": (lambda i: "Bearer " + _tampered(i), "signature is not valid"),
    "expired": (
        lambda i: "Bearer " + i.mint("system:test", "system/*.*", lifetime=-120),
        "expired",
    ),
    "unknown role": (
        lambda i: "Bearer " + i.mint("system:test", "system/*.*", extra={"role": "wizard"}),
        "unknown role",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_refused_token_leaves_one_anonymous_login_entry(
    case: str, api: TestClient, engine: Engine, issuer: TokenIssuer
) -> None:
    make, reason = CASES[case]
    authorization = make(issuer)
    headers = {"Accept": FHIR}
    if authorization is not None:
        headers["Authorization"] = authorization
    before = len(login_entries(engine))
    r = api.get("/fhir/Patient/some-id", headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    new = login_entries(engine)[before:]
    assert len(new) == 1
    (entry,) = new
    assert entry.actor == "anonymous"
    assert entry.outcome == "4"
    assert entry.patient_id == ""
    assert reason in entry.detail
    assert entry.detail.startswith("FHIR API GET Patient: ")
    assert "some-id" not in entry.detail  # ids from the path are not echoed
    if authorization is not None:
        secret = authorization.split(" ", 1)[1]
        assert secret not in entry.detail
        for part in secret.split("."):
            assert part not in entry.detail


def test_a_revoked_token_is_audited_when_it_comes_back(
    api: TestClient, engine: Engine, full_grant: dict[str, Any], diary: Any
) -> None:
    token = full_grant["access_token"]
    revoked = api.post("/oauth/revoke", data={"token": token, "client_id": diary.client_id})
    assert revoked.status_code == 200
    before = len(login_entries(engine))
    r = api.get("/fhir/Observation", headers={"Authorization": f"Bearer {token}", "Accept": FHIR})
    assert r.status_code == 401
    (entry,) = login_entries(engine)[before:]
    assert entry.actor == "anonymous"
    assert entry.outcome == "4"
    assert "revoked" in entry.detail
    for part in token.split("."):
        assert part not in entry.detail


def test_accepted_tokens_and_metadata_leave_no_login_entry(
    client: TestClient, engine: Engine
) -> None:
    assert client.get("/fhir/Patient").status_code == 200
    assert client.get("/fhir/metadata", headers={"Authorization": ""}).status_code == 200
    assert login_entries(engine) == []
