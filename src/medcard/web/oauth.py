"""OAuth 2.0 / SMART endpoints: a thin Starlette adapter around ``auth.oauth.server``.

* ``GET  /oauth/authorize``  consent screen for a signed-in patient or member of staff
  (Russian, ``?lang=en``); staff see their role named and must have passed the second factor
* ``POST /oauth/authorize``  the Allow / Deny (CSRF-checked) → back to the app
* ``POST /oauth/token``      authorization_code (+PKCE), refresh_token, client_credentials
* ``POST /oauth/revoke``     RFC 7009;  ``POST /oauth/introspect``  RFC 7662
* ``GET  /.well-known/smart-configuration`` (also under ``/fhir``)  SMART discovery
* ``GET  /.well-known/openid-configuration`` (also under ``/fhir``)  OpenID Connect discovery
* ``GET  /.well-known/jwks.json``  the public key that verifies our tokens

The adapter only moves bytes: it turns a Starlette request into the core's plain
``HttpRequest`` and the answer back into a response.  An authorization request whose
client or redirect URI cannot be trusted gets an error page here, never a redirect.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from medcard.audit import reports
from medcard.auth import ratelimit
from medcard.auth.oauth import consent as wording
from medcard.auth.oauth.discovery import openid_configuration, smart_configuration
from medcard.auth.oauth.server import (
    Consent,
    HttpRequest,
    HttpResponse,
    MedcardAuthorizationServer,
    Problem,
)
from medcard.auth.oauth.store import ResourceOwner
from medcard.fhir.outcomes import FhirError
from medcard.web import i18n
from medcard.web.deps import (
    SignedIn,
    client_ip,
    current_session,
    over_limit,
    page_repository,
    require_csrf,
    services,
)
from medcard.web.render import PageRoute, lang_of, page

pages = APIRouter(route_class=PageRoute, include_in_schema=False)
api = APIRouter(include_in_schema=False)
router = APIRouter()
FORM_LIMIT = 64 * 1024
# Discovery documents and our public key are public: any web page may read them.  The
# token and revocation endpoints answer browsers only from the origins configured in
# MEDCARD_CORS_ORIGINS (web/app.py installs the CORS middleware); introspection is for
# servers and answers no browser.
PUBLIC_CORS = {"Access-Control-Allow-Origin": "*"}

TEXT = {
    "ru": {
        "title": "Доступ приложения к карте",
        "asks": "«{app}» просит доступ к вашей медицинской карте",
        "card_of": "Карта: {name}",
        "may": "Если вы разрешите, приложение сможет:",
        "writes": "Записи, которые добавит приложение, будут помечены как внесённые вами.",
        "not_granted": "Приложение просило также: {words}. Этого оно не получит.",
        "return_to": "После ответа вы вернётесь в приложение: {where}",
        "trust": "Разрешайте доступ только приложениям, которым доверяете.",
        "allow": "Разрешить",
        "deny": "Отказать",
        "error_title": "Запрос приложения отклонён",
        "error_lead": "Приложение прислало запрос, который нельзя выполнить безопасно, поэтому мы не вернём вас в него.",
        "error_detail": "Причина (для разработчиков приложения)",
        "pick": "Чью карту открыть приложению",
        "pick_own": "Мою карту",
        "pick_hint": "Приложение получит доступ только к выбранной карте.",
        "asks_staff": "«{app}» просит доступ к medcard от вашего имени",
        "signed_in_as": "Вы вошли как {name}, роль: {role}",
        "may_staff": "Если вы разрешите, приложение сможет — не больше, чем позволяет роль «{role}»:",
        "writes_staff": "Всё, что приложение прочитает или изменит, попадёт в журнал доступа от вашего имени.",
    },
    "en": {
        "title": "App access to your card",
        "asks": "“{app}” asks for access to your medical card",
        "card_of": "Card: {name}",
        "may": "If you allow it, the app will be able to:",
        "writes": "Entries the app adds will be marked as entered by you.",
        "not_granted": "The app also asked for: {words}. It will not get this.",
        "return_to": "After you answer you will go back to the app: {where}",
        "trust": "Only allow apps you trust.",
        "allow": "Allow",
        "deny": "Deny",
        "error_title": "The app's request was refused",
        "error_lead": "The app sent a request that cannot be carried out safely, so we will not send you back to it.",
        "error_detail": "Reason (for the app's developers)",
        "pick": "Whose card to open the app to",
        "pick_own": "My card",
        "pick_hint": "The app gets access to the chosen card only.",
        "asks_staff": "“{app}” asks to work in medcard on your behalf",
        "signed_in_as": "Signed in as {name}, role: {role}",
        "may_staff": "If you allow it, the app will be able to do this, and no more than the role “{role}” allows:",
        "writes_staff": "Everything the app reads or changes is recorded in the access log under your name.",
    },
}


def authorization_server(request: Request) -> MedcardAuthorizationServer:
    """One authorization server per application (built on first use)."""
    server = getattr(request.app.state, "oauth_server", None)
    if server is None:
        svc = services(request)
        server = MedcardAuthorizationServer(
            svc.engine,
            svc.issuer,
            access_lifetime_s=svc.settings.token_lifetime_seconds,
            public_base_url=svc.settings.base_url,
        )
        request.app.state.oauth_server = server
    return server


def _base_url(request: Request) -> str:
    configured = services(request).settings.base_url
    return (configured or str(request.base_url)).rstrip("/")


def _plain(request: Request, form: list[tuple[str, str]] | None = None) -> HttpRequest:
    return HttpRequest(
        method=request.method,
        url=str(request.url),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=list(request.query_params.multi_items()),
        form=form or [],
    )


def _owner(signed: SignedIn) -> ResourceOwner:
    a = signed.account
    return ResourceOwner(
        account_id=a.id,
        role=str(a.role),
        fhir_ref=a.fhir_ref,
        display_name=a.display_name,
        active=a.active,
        organization_ref=a.organization_ref,
        mfa_ok=signed.session.mfa_ok,
    )


def _respond(resp: HttpResponse, *, status: int | None = None) -> Response:
    headers = dict(resp.headers)
    if resp.location is not None:
        return RedirectResponse(resp.location, status_code=status or resp.status)
    headers.pop("Content-Type", None)
    return JSONResponse(resp.body if isinstance(resp.body, dict) else {}, resp.status, headers)


# -- authorization endpoint (pages) ------------------------------------------------------


Signed = Annotated[SignedIn, Depends(current_session)]


@pages.get("/oauth/authorize")
def authorize(request: Request, signed: Signed) -> Response:
    server = authorization_server(request)
    result = server.begin_authorization(_plain(request), _owner(signed))
    if isinstance(result, Problem):
        return _problem_page(request, result)
    if isinstance(result, HttpResponse):
        return _respond(result)
    return _consent_page(request, signed, result)


@pages.post("/oauth/authorize", dependencies=[Depends(require_csrf)])
def decide(
    request: Request,
    signed: Signed,
    decision: Annotated[str, Form()] = "",
    patient: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    server = authorization_server(request)
    allow = decision == "allow"
    result = server.finish_authorization(
        _plain(request), _owner(signed), allow=allow, patient=patient
    )
    if isinstance(result, Problem):
        return _problem_page(request, result)
    return _respond(result, status=303)  # after a POST the browser follows with a GET


def _consent_page(request: Request, signed: SignedIn, c: Consent) -> Response:
    lang = lang_of(request)
    text = TEXT[lang if lang in TEXT else "ru"]
    query = request.url.query
    other = "en" if lang == "ru" else "ru"
    # Keep the authorization request when switching language.
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    switch = (
        request.url.path + "?" + "&".join(f"{k}={v}" for k, v in _encode([*kept, ("lang", other)]))
    )
    where = _origin(c.redirect_uri)
    if c.owner.is_staff:
        # Staff grant access to other people's records: name the role the app will act
        # with, and say that everything it does is in the access log under their name.
        role = i18n.translator(lang)(f"role_{c.owner.role}")
        name = signed.account.display_name or signed.account.login
        o = {
            **text,
            "may": text["may_staff"].format(role=role),
            "writes": text["writes_staff"],
        }
        heading = text["asks_staff"].format(app=c.client.name)
        who = text["signed_in_as"].format(name=name, role=role)
        writes = True
    else:
        o = text
        heading = text["asks"].format(app=c.client.name)
        who = text["card_of"].format(name=signed.account.display_name or c.owner.fhir_ref)
        writes = wording.writes(c.scopes)
    response = page(
        request,
        "oauth/consent.html",
        o=o,
        heading=heading,
        card_of="" if c.cards else who,  # the picker names the cards
        sentences=wording.sentences(c.scopes, lang),
        writes=writes,
        not_granted=text["not_granted"].format(words=", ".join(c.not_granted))
        if c.not_granted
        else "",
        return_to=text["return_to"].format(where=where),
        cards=_card_names(request, signed, c.cards, text["pick_own"]),
        action="/oauth/authorize" + (f"?{query}" if query else ""),
        csrf_token=signed.csrf,
        other_lang_url=switch,
    )
    # The form's answer redirects to the app: browsers apply form-action to that redirect.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        f"form-action 'self' {where}; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _card_names(
    request: Request, signed: SignedIn, cards: list[str], own: str
) -> list[tuple[str, str]]:
    """The patient picker's choices: (patient id, name), own card first.  Read as the
    signed-in parent, so the gate allows and the access log records each read."""
    if not cards:
        return []
    out = [(cards[0], own)]
    with page_repository(request, signed.account, "oauth consent: patient picker") as repo:
        for pid in cards[1:]:
            try:
                name = reports.human_name(repo.read("Patient", pid).json())
            except FhirError:
                continue
            out.append((pid, name or pid))
    return out


def _problem_page(request: Request, problem: Problem) -> Response:
    lang = lang_of(request)
    text = TEXT[lang if lang in TEXT else "ru"]
    return page(
        request,
        "oauth/error.html",
        problem.status,
        o=text,
        error=problem.error,
        description=problem.description,
    )


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def _encode(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    from urllib.parse import quote

    return [(quote(k, safe=""), quote(v, safe="")) for k, v in items]


# -- token, revocation, introspection (JSON) ----------------------------------------------


async def _form(request: Request) -> list[tuple[str, str]] | Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return _oauth_error(
            "invalid_request", "Send parameters as application/x-www-form-urlencoded"
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            return _oauth_error("invalid_request", "The request body is too large")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        return _oauth_error("invalid_request", "The request body is not valid form data")


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description},
        status,
        {"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def _call(request: Request, name: str) -> Response:
    from fastapi.concurrency import run_in_threadpool

    form = await _form(request)
    if isinstance(form, Response):
        return form
    server = authorization_server(request)
    handler = {"token": server.token, "revoke": server.revoke, "introspect": server.introspect}[
        name
    ]
    resp: HttpResponse = await run_in_threadpool(handler, _plain(request, form))
    return _respond(resp)


@api.post("/oauth/token")
async def token(request: Request) -> Response:
    from fastapi.concurrency import run_in_threadpool

    hit = await run_in_threadpool(over_limit, request, (ratelimit.TOKEN_IP, client_ip(request)))
    if hit is not None:
        refused = _oauth_error(
            "invalid_request", f"Too many token requests; retry in {hit.retry_after} s", 429
        )
        refused.headers["Retry-After"] = str(hit.retry_after)
        return refused
    return await _call(request, "token")


@api.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    return await _call(request, "revoke")


@api.post("/oauth/introspect")
async def introspect(request: Request) -> Response:
    return await _call(request, "introspect")


# -- discovery ----------------------------------------------------------------------------


@api.get("/.well-known/smart-configuration")
@api.get("/fhir/.well-known/smart-configuration")
def smart_config(request: Request) -> Response:
    body: dict[str, Any] = smart_configuration(_base_url(request))
    return JSONResponse(body, headers=PUBLIC_CORS)


@api.get("/.well-known/openid-configuration")
@api.get("/fhir/.well-known/openid-configuration")
def openid_config(request: Request) -> Response:
    body: dict[str, Any] = openid_configuration(_base_url(request))
    return JSONResponse(body, headers=PUBLIC_CORS)


@api.get("/.well-known/jwks.json")
def jwks(request: Request) -> Response:
    key = services(request).issuer.key
    public = {k: v for k, v in key.as_dict(private=False).items() if k != "d"}
    public.setdefault("alg", "ES256")
    return JSONResponse({"keys": [public]}, headers=PUBLIC_CORS)


router.include_router(pages)
router.include_router(api)
