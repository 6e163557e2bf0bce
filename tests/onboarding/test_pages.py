"""The pages of both routes over HTTP: registration → check → request → card; registrar
queue; consent and documents; each bad input answered with a page that changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyotp
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.auth.accounts import Account, Role
from medcard.onboarding import requests as access_requests
from tests.onboarding.conftest import ORG, PASSWORD, TYPED

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CHECK = re.compile(r'name="check" value="([^"]+)"')


def _csrf(html: str) -> str:
    m = CSRF.search(html)
    assert m, html[:500]
    return m.group(1)


def _register(web: Any, login: str = "new@example.org") -> Any:
    form = web.get("/register")
    assert form.status_code == 200
    return web.post(
        "/register",
        data={
            "login": login,
            "password": PASSWORD,
            "password2": PASSWORD,
            "csrf_token": _csrf(form.text),
        },
    )


def _check(web: Any, **changes: str) -> Any:
    page = web.get("/access")
    return web.post("/access/check", data={**TYPED, **changes, "csrf_token": _csrf(page.text)})


def _sign_in(web: Any, engine: Engine, account: Account) -> None:
    page = web.get("/login")
    r = web.post(
        "/login",
        data={"login": account.login, "password": PASSWORD, "csrf_token": _csrf(page.text)},
    )
    assert r.status_code == 303
    if r.headers["location"].startswith("/login/mfa"):
        fresh = accounts.get(engine, account.id)
        assert fresh is not None
        assert fresh.totp_secret
        page = web.get("/login/mfa")
        r = web.post(
            "/login/mfa",
            data={"code": pyotp.TOTP(fresh.totp_secret).now(), "csrf_token": _csrf(page.text)},
        )
        assert r.status_code == 303


def test_registration_route_with_a_full_match_opens_the_card(
    web: Any, engine: Engine, card: str
) -> None:
    r = _register(web)
    assert (r.status_code, r.headers["location"]) == (303, "/access?notice=registered")
    page = web.get(r.headers["location"])
    assert "Подтвердите личность" in page.text or "подтвердите личность" in page.text
    checked = _check(web)
    assert checked.status_code == 200
    assert "Данные совпали" in checked.text
    assert "Осталось проверок на сегодня: 4" in checked.text
    sealed = CHECK.search(checked.text)
    assert sealed
    filed = web.post(
        "/access/request", data={"check": sealed.group(1), "csrf_token": _csrf(checked.text)}
    )
    assert filed.headers["location"] == "/access?notice=granted"
    done = web.get("/access?notice=granted")
    assert "Медицинская карта открыта" in done.text
    assert 'href="/card"' in done.text
    account = accounts.get_by_login(engine, "new@example.org")
    assert account is not None
    assert account.fhir_ref == f"Patient/{card}"


def test_registration_refuses_mismatched_passwords_and_taken_logins(
    web: Any, engine: Engine, make_account: Callable[..., Account]
) -> None:
    form = web.get("/register")
    r = web.post(
        "/register",
        data={
            "login": "a@example.org",
            "password": PASSWORD,
            "password2": PASSWORD + "x",
            "csrf_token": _csrf(form.text),
        },
    )
    assert r.status_code == 422
    assert "Пароли не совпадают" in r.text
    make_account(login="taken@example.org")
    assert "уже есть" in _register(web, "taken@example.org").text
    assert accounts.get_by_login(engine, "a@example.org") is None
    no_csrf = web.post(
        "/register", data={"login": "b@example.org", "password": PASSWORD, "password2": PASSWORD}
    )
    assert no_csrf.status_code == 403


def test_partial_match_goes_to_the_registrar_who_approves(
    web: Any,
    engine: Engine,
    card: str,
    make_account: Callable[..., Account],
    new_web: Callable[[], Any],
) -> None:
    _register(web)
    checked = _check(web, family="Иванова")
    assert "Одно поле не совпадает" in checked.text
    assert "Если вы меняли фамилию" in checked.text
    sealed = CHECK.search(checked.text)
    assert sealed
    web.post("/access/request", data={"check": sealed.group(1), "csrf_token": _csrf(checked.text)})
    pending = web.get("/access")
    assert "Запрос на рассмотрении" in pending.text
    assert 'action="/access/check"' not in pending.text
    # Replaying the sealed result cannot file a second request.
    again = web.post(
        "/access/request", data={"check": sealed.group(1), "csrf_token": _csrf(pending.text)}
    )
    assert again.status_code == 409
    assert "уже есть запрос" in again.text

    registrar = make_account(Role.REGISTRAR, organization_ref=f"Organization/{ORG}")
    desk = new_web()
    _sign_in(desk, engine, registrar)
    queue = desk.get("/registrar/access-requests")
    assert queue.status_code == 200
    assert "Иванова" in queue.text
    assert "Семенова" in queue.text
    (request,) = access_requests.queue(engine, registrar)
    r = desk.post(
        f"/registrar/access-requests/{request.id}/approve", data={"csrf_token": _csrf(queue.text)}
    )
    assert r.headers["location"] == "/registrar/access-requests?notice=approved"
    assert "Медицинская карта открыта" in web.get("/access").text


def test_registrar_rejects_with_a_reason_the_applicant_reads(
    web: Any,
    engine: Engine,
    card: str,
    make_account: Callable[..., Account],
    new_web: Callable[[], Any],
) -> None:
    _register(web)
    checked = _check(web, passport="4509000001")
    sealed = CHECK.search(checked.text)
    assert sealed
    web.post("/access/request", data={"check": sealed.group(1), "csrf_token": _csrf(checked.text)})
    registrar = make_account(Role.REGISTRAR, organization_ref=f"Organization/{ORG}")
    desk = new_web()
    _sign_in(desk, engine, registrar)
    queue = desk.get("/registrar/access-requests")
    (request,) = access_requests.queue(engine, registrar)
    empty = desk.post(
        f"/registrar/access-requests/{request.id}/reject",
        data={"reason": " ", "csrf_token": _csrf(queue.text)},
    )
    assert empty.status_code == 422
    assert "Укажите причину" in empty.text
    desk.post(
        f"/registrar/access-requests/{request.id}/reject",
        data={
            "reason": "Паспорт не совпадает; придите с паспортом",
            "csrf_token": _csrf(queue.text),
        },
    )
    page = web.get("/access")
    assert "Отклонён" in page.text
    assert "придите с паспортом" in page.text
    assert 'action="/access/check"' in page.text  # may check again


def test_wrong_data_gives_a_clear_message_and_changes_nothing(
    web: Any, engine: Engine, card: str
) -> None:
    _register(web)
    several = _check(web, family="Иванова", birth_date="01.01.1990")
    assert "Данные не совпадают с картой" in several.text
    assert "Фамилия" not in several.text.split("Ваши данные")[0].split("Данные не совпадают")[1]
    assert CHECK.search(several.text) is None
    bad = _check(web, snils="123")
    assert bad.status_code == 422
    assert "СНИЛС не прошёл проверку" in bad.text
    forged = web.post("/access/request", data={"check": "forged", "csrf_token": _csrf(bad.text)})
    assert forged.status_code == 400
    account = accounts.get_by_login(engine, "new@example.org")
    assert account is not None
    assert account.fhir_ref == ""
    assert access_requests.requests_of(engine, account) == []


def test_sixth_check_in_a_day_is_refused(web: Any, engine: Engine, card: str) -> None:
    _register(web)
    for _ in range(5):
        _check(web, family="Иванова", given="Ольга")
    refused = _check(web)
    assert refused.status_code == 429
    assert "Слишком много проверок" in refused.text


def test_registrar_queue_is_for_registrars_only(
    web: Any, engine: Engine, make_account: Callable[..., Account]
) -> None:
    doctor = make_account(Role.PRACTITIONER, organization_ref=f"Organization/{ORG}")
    _sign_in(web, engine, doctor)
    assert web.get("/registrar/access-requests").status_code == 403
    assert web.get("/access").status_code == 403


def test_consent_and_documents_pages(
    web: Any, engine: Engine, card: str, make_account: Callable[..., Account], inline_jobs: None
) -> None:
    account = make_account(fhir_ref=f"Patient/{card}")
    _sign_in(web, engine, account)
    docs = web.get("/access/documents")
    assert "только с действующим согласием" in docs.text
    refused = web.post("/access/documents", data={"kind": "lab", "csrf_token": _csrf(docs.text)})
    assert refused.status_code == 403
    page = web.get("/access/consent")
    unticked = web.post("/access/consent", data={"csrf_token": _csrf(page.text)})
    assert unticked.status_code == 422
    given = web.post("/access/consent", data={"agree": "yes", "csrf_token": _csrf(page.text)})
    assert given.headers["location"] == "/access/documents?notice=consent_given"
    docs = web.get("/access/documents")
    r = web.post(
        "/access/documents", data={"kind": ["lab", "certificates"], "csrf_token": _csrf(docs.text)}
    )
    assert r.headers["location"] == "/access/documents?notice=requested"
    listed = web.get("/access/documents")
    assert listed.text.count("Документы получены") == 2
    assert f"/card/{card}/entry/DiagnosticReport/" in listed.text
    consent_page = web.get("/access/consent")
    revoked = web.post("/access/consent/revoke", data={"csrf_token": _csrf(consent_page.text)})
    assert revoked.headers["location"] == "/access/consent?notice=consent_revoked"
    after = web.get("/access/documents")
    assert f"/card/{card}/entry/DiagnosticReport/" in after.text  # nothing already shown is lost
    assert "только с действующим согласием" in after.text
