"""OAuth 2.0 / SMART endpoints: a thin Starlette adapter around ``auth.oauth.server``.

* ``GET  /oauth/authorize``  consent screen for a signed-in patient (Russian, ``?lang=en``)
* ``POST /oauth/authorize``  the patient's Allow / Deny (CSRF-checked) → back to the app
* ``POST /oauth/token``      authorization_code (+PKCE), refresh_token, client_credentials
* ``POST /oauth/revoke``     RFC 7009;  ``POST /oauth/introspect``  RFC 7662
* ``GET  /.well-known/smart-configuration`` (also under ``/fhir``)  SMART discovery
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

from medcard.auth.oauth import consent as wording
from medcard.auth.oauth.discovery import smart_configuration
from medcard.auth.oauth.server import (
    Consent,
    HttpRequest,
    HttpResponse,
    MedcardAuthorizationServer,
    Problem,
)
from medcard.auth.oauth.store import ResourceOwner
from medcard.web.deps import SignedIn, current_session, require_csrf, services
from medcard.web.render import PageRoute, lang_of, page

pages = APIRouter(route_class=PageRoute, include_in_schema=False)
api = APIRouter(include_in_schema=False)
router = APIRouter()
FORM_LIMIT = 64 * 1024
CORS = {"Access-Control-Allow-Origin": "*"}  # apps in browsers call these directly

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
def decide(request: Request, signed: Signed, decision: Annotated[str, Form()] = "") -> Response:
    server = authorization_server(request)
    allow = decision == "allow"
    result = server.finish_authorization(_plain(request), _owner(signed), allow=allow)
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
    response = page(
        request,
        "oauth/consent.html",
        o=text,
        heading=text["asks"].format(app=c.client.name),
        card_of=text["card_of"].format(name=signed.account.display_name or c.owner.fhir_ref),
        sentences=wording.sentences(c.scopes, lang),
        writes=wording.writes(c.scopes),
        not_granted=text["not_granted"].format(words=", ".join(c.not_granted))
        if c.not_granted
        else "",
        return_to=text["return_to"].format(where=where),
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
        {"Cache-Control": "no-store", "Pragma": "no-cache", **CORS},
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
    out = _respond(resp)
    out.headers.update(CORS)
    return out


@api.post("/oauth/token")
async def token(request: Request) -> Response:
    return await _call(request, "token")


@api.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    return await _call(request, "revoke")


@api.post("/oauth/introspect")
async def introspect(request: Request) -> Response:
    return await _call(request, "introspect")


@api.options("/oauth/{endpoint}")
async def preflight(endpoint: str) -> Response:
    return Response(
        status_code=204,
        headers={
            **CORS,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )


# -- discovery ----------------------------------------------------------------------------


@api.get("/.well-known/smart-configuration")
@api.get("/fhir/.well-known/smart-configuration")
def smart_config(request: Request) -> Response:
    body: dict[str, Any] = smart_configuration(_base_url(request))
    body["jwks_uri"] = _base_url(request) + "/.well-known/jwks.json"
    return JSONResponse(body, headers=CORS)


@api.get("/.well-known/jwks.json")
def jwks(request: Request) -> Response:
    key = services(request).issuer.key
    public = {k: v for k, v in key.as_dict(private=False).items() if k != "d"}
    public.setdefault("alg", "ES256")
    return JSONResponse({"keys": [public]}, headers=CORS)


router.include_router(pages)
router.include_router(api)
