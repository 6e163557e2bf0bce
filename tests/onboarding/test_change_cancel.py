"""EMIAS route, issue 19 item 2: cancel access from the portal (closed for every session
and token of the account at once, until requested again), refusals in Russian, and a
consent given then revoked keeps /card closed for such an account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from medcard.access.context import AccessContext
from medcard.auth import accounts, epochs
from medcard.auth.accounts import Account, Role
from medcard.db.tables import audit_log
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from tests.onboarding.test_pages import CHECK, _check, _csrf, _register, _sign_in


def _granted(web: Any, engine: Engine, login: str = "emias@example.org") -> Account:
    _register(web, login)
    checked = _check(web)
    sealed = CHECK.search(checked.text)
    assert sealed
    filed = web.post(
        "/access/request", data={"check": sealed.group(1), "csrf_token": _csrf(checked.text)}
    )
    assert filed.headers["location"] == "/access?notice=granted"
    account = accounts.get_by_login(engine, login)
    assert account is not None
    assert account.fhir_ref
    return account


def _card(browser: Any) -> str:
    """Where «Медицинская карта» leads: the card itself, or the step still to take."""
    r = browser.get("/card")
    assert r.status_code == 303
    where = str(r.headers["location"])
    if where.startswith("/card/"):
        assert browser.get(where).status_code == 200
        return "open"
    return where


def _cancel(web: Any, **data: str) -> Any:
    page = web.get("/access")
    return web.post("/access/cancel", data={"csrf_token": _csrf(page.text), **data})


def _tasks(engine: Engine, pid: str, code: str) -> list[dict[str, Any]]:
    repo = Repository(engine, AccessContext.system())
    try:
        req = parse("Task", [("patient", pid), ("_count", "50")])
        found = [s.json() for s in repo.search(req).matches]
    finally:
        repo.close()
    return [t for t in found if t["code"]["coding"][0]["code"] == code]


def test_cancel_closes_the_card_for_every_session_and_token_until_requested_again(
    web: Any,
    new_web: Callable[[], Any],
    engine: Engine,
    card: str,
    client: Any,
    token: Callable[..., str],
) -> None:
    account = _granted(web, engine)
    other = new_web()  # the same person signed in on a second device
    _sign_in(other, engine, account)
    assert _card(other) == "open"
    minted = token(
        "patient/*.rs",
        patient=card,
        subject=f"Patient/{card}",
        extra={"account": account.id, **epochs.mint_claim(engine, account.id)},
    )
    api = {"Authorization": f"Bearer {minted}", "Accept": "application/fhir+json"}
    assert client.get(f"/fhir/Patient/{card}", headers=api).status_code == 200

    page = web.get("/access")
    assert "Отключить доступ к медицинской карте" in page.text
    refused = _cancel(web)  # the confirmation box not ticked: nothing changes
    assert refused.status_code == 422
    assert "отметьте, что вы понимаете" in refused.text
    assert accounts.get(engine, account.id).fhir_ref == f"Patient/{card}"  # type: ignore[union-attr]

    r = _cancel(web, confirm="yes")
    assert (r.status_code, r.headers["location"]) == (303, "/access?notice=cancelled")
    assert "Доступ к медицинской карте отключён" in web.get(r.headers["location"]).text
    assert accounts.get(engine, account.id).fhir_ref == ""  # type: ignore[union-attr]
    # every session: the card section is closed now
    for browser in (web, other):
        assert _card(browser) == "/access"
    # every token: refused at once
    r = client.get(f"/fhir/Patient/{card}", headers=api)
    assert r.status_code == 401
    assert "revoked" in r.json()["issue"][0]["diagnostics"]
    # recorded in the card's compartment and audited
    (cancel_task,) = _tasks(engine, card, "access-cancel")
    assert cancel_task["status"] == "completed"
    assert cancel_task["requester"]["identifier"]["value"] == account.id
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.outcome).where(
                audit_log.c.interaction == "access-cancel", audit_log.c.actor == account.actor
            )
        ).all()
    assert [r.outcome for r in rows] == ["0"]

    # a second cancel is refused with the reason
    page = web.get("/access")
    assert "Отключить доступ к медицинской карте" not in page.text.split("<main", 1)[1]
    again = _cancel(web, confirm="yes")
    assert again.status_code == 409
    assert "не связана с медицинской картой" in again.text

    # until requested again: a new check and request opens the card
    checked = _check(web)
    sealed = CHECK.search(checked.text)
    assert sealed
    web.post("/access/request", data={"check": sealed.group(1), "csrf_token": _csrf(checked.text)})
    assert accounts.get(engine, account.id).fhir_ref == f"Patient/{card}"  # type: ignore[union-attr]
    assert _card(other) == "open"


def test_cancel_is_refused_with_a_reason_for_accounts_not_opened_by_a_request(
    web: Any, engine: Engine, card: str, make_account: Callable[..., Account]
) -> None:
    made = make_account(Role.PATIENT)
    accounts.link(engine, made.id, f"Patient/{card}")  # linked by the operator
    _sign_in(web, engine, made)
    page = web.get("/access")
    assert "Отключить доступ к медицинской карте" not in page.text.split("<main", 1)[1]
    r = _cancel(web, confirm="yes")
    assert r.status_code == 409
    assert "не по запросу доступа" in r.text
    assert accounts.get(engine, made.id).fhir_ref == f"Patient/{card}"  # type: ignore[union-attr]
    with engine.connect() as conn:
        outcomes = conn.execute(
            select(audit_log.c.outcome, audit_log.c.detail).where(
                audit_log.c.interaction == "access-cancel", audit_log.c.actor == made.actor
            )
        ).all()
    assert [(o.outcome, o.detail) for o in outcomes] == [("4", "ob_cancel_not_requested")]


def test_consent_given_then_revoked_closes_the_card_of_a_request_account(
    web: Any, engine: Engine, card: str
) -> None:
    _granted(web, engine)
    assert _card(web) == "open"
    page = web.get("/access/consent")
    r = web.post("/access/consent", data={"agree": "yes", "csrf_token": _csrf(page.text)})
    assert r.status_code == 303
    assert _card(web) == "open"
    page = web.get("/access/consent")
    r = web.post("/access/consent/revoke", data={"csrf_token": _csrf(page.text)})
    assert r.status_code == 303
    assert _card(web) == "/access/consent"
    # agreeing again opens it again
    page = web.get("/access/consent")
    web.post("/access/consent", data={"agree": "yes", "csrf_token": _csrf(page.text)})
    assert _card(web) == "open"


def test_contact_email_for_notifications_is_changed_validated_and_audited(
    web: Any, engine: Engine, card: str
) -> None:
    account = _granted(web, engine)
    page = web.get("/access")
    assert "Адрес для уведомлений" in page.text
    assert "emias@example.org" in page.text  # the sign-in address until another is given
    bad = web.post("/access/contact", data={"email": "не почта", "csrf_token": _csrf(page.text)})
    assert bad.status_code == 422
    assert "это не адрес электронной почты" in bad.text
    assert accounts.get(engine, account.id).notify_email == ""  # type: ignore[union-attr]
    r = web.post(
        "/access/contact", data={"email": " Mama@Example.RU ", "csrf_token": _csrf(page.text)}
    )
    assert (r.status_code, r.headers["location"]) == (303, "/access?notice=contact")
    assert accounts.get(engine, account.id).notify_email == "mama@example.ru"  # type: ignore[union-attr]
    shown = web.get("/access?notice=contact").text
    assert "Адрес для уведомлений сохранён" in shown
    assert "<strong>mama@example.ru</strong>" in shown
    with engine.connect() as conn:
        outcomes = conn.execute(
            select(audit_log.c.outcome).where(
                audit_log.c.interaction == "contact-change", audit_log.c.actor == account.actor
            )
        ).scalars()
        assert sorted(outcomes) == ["0", "4"]
