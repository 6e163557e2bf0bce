"""Pages and endpoints of the demo's stand-in identity provider (``auth/standin_idp.py``).

::

    GET  /standin-idp/                                   what this is (labelled a stand-in)
    GET  /standin-idp/.well-known/openid-configuration   discovery
    GET  /standin-idp/jwks                               the RS256 public key
    GET  /standin-idp/authorize                          the person picker
    POST /standin-idp/authorize                          picked (or cancelled) → the client
    POST /standin-idp/token                              code + PKCE verifier → ID token
    GET  /standin-idp/userinfo                           claims for an access token

Mounted only when ``MEDCARD_STANDIN_IDP`` is on (``serve --demo`` turns it on);
:func:`configure` then adds it to ``sso_providers`` as an ordinary OpenID Connect
provider, so medcard's SSO client reaches it over HTTP like any other.
"""

from __future__ import annotations

import logging
from typing import Any, Final
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.errors import OAuth2Error
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import Engine

from medcard.auth import standin_idp as idp
from medcard.config import Settings, SsoProvider
from medcard.web import i18n
from medcard.web.render import templates

log = logging.getLogger("medcard.standin_idp")
router = APIRouter(prefix=idp.PATH, include_in_schema=False)

DEMO_REGIONS: Final = ("77", "78", "66")  # the demo's regions (regions/config.py seeds them)
# No form-action: after the picker's POST the provider redirects to the client's
# callback, which may be another origin (localhost vs 127.0.0.1), and Chromium applies
# form-action to that redirect.
HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The parameters of an authorization request carried through the picker's form.
AUTH_PARAMS: Final = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
)


def issuer_for(settings: Settings) -> str:
    """The stand-in's issuer URL: under MEDCARD_BASE_URL, else on loopback at the port
    the server listens on (``serve`` passes it as MEDCARD_PORT); '' when unknown."""
    if settings.base_url:
        return settings.base_url.rstrip("/") + idp.PATH
    if settings.host in ("127.0.0.1", "0.0.0.0", "localhost", "::1", "::"):  # noqa: S104
        return f"http://127.0.0.1:{settings.port}{idp.PATH}"
    return ""


def configure(settings: Settings, engine: Engine) -> tuple[Settings, idp.StandinProvider | None]:
    """The settings with the stand-in added for the demo regions that have no provider
    configured yet, and the provider; unchanged settings and None if it cannot run."""
    issuer = issuer_for(settings)
    try:
        SsoProvider(issuer=issuer, client_id=idp.CLIENT_ID)  # https, or http on loopback
    except ValidationError:
        log.warning(
            "MEDCARD_STANDIN_IDP is on but its URL %r cannot be an OpenID Connect issuer "
            "(https, or http on loopback; the server listens on %s): national sign-in is "
            "not offered",
            issuer,
            settings.host,
        )
        return settings, None
    base = urlsplit(settings.base_url) if settings.base_url else None
    allowed = frozenset({base.netloc}) if base and base.netloc else frozenset()
    provider = idp.make_provider(
        issuer, settings.data_dir / "standin-idp-key.json", engine, allowed
    )
    entry = SsoProvider(
        name=idp.NAME,
        issuer=provider.issuer,
        client_id=idp.CLIENT_ID,
        client_secret=provider.client.client_secret,
    )
    providers = dict(settings.sso_providers)
    for region in DEMO_REGIONS:
        providers.setdefault(region, entry)
    return settings.model_copy(update={"sso_providers": providers}), provider


def install(app: FastAPI, provider: idp.StandinProvider) -> None:
    app.state.standin_idp = provider
    app.include_router(router)


def _provider(request: Request) -> idp.StandinProvider:
    found = getattr(request.app.state, "standin_idp", None)
    assert isinstance(found, idp.StandinProvider)
    return found


def _lang(request: Request) -> str:
    return i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE))


def _headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _oauth_request(request: Request) -> idp.Request:
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        data = await request.form()
        form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return idp.Request(
        request.method,
        str(request.url),
        request.headers,
        list(request.query_params.multi_items()),
        form,
    )


def _answer(answer: idp.Answer) -> Response:
    headers = dict(answer.headers)
    location = headers.pop("Location", None)
    if location is not None and 300 <= answer.status < 400:
        response: Response = RedirectResponse(location, status_code=303, headers=headers)
    else:
        response = Response(answer.body, answer.status, headers=headers)
    return _headers(response)


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    lang = _lang(request)
    response = templates.TemplateResponse(
        request,
        template,
        {"lang": lang, "label": idp.LABEL_EN if lang == "en" else idp.LABEL_RU, **context},
        status_code=status,
    )
    return _headers(response)


def _refusal(request: Request, error: OAuth2Error) -> Response:
    """An invalid request: back to the client when its redirect URI is known, else a page."""
    if error.redirect_uri:
        status, body, headers = error()
        return _answer(idp.Answer(status, body, list(headers)))
    return _page(
        request,
        "standin_idp/error.html",
        400,
        error=error.error,
        description=error.description or "",
    )


# -- endpoints ----------------------------------------------------------------------------


@router.get("/")
async def about(request: Request) -> Response:
    return _page(request, "standin_idp/about.html", issuer=_provider(request).issuer)


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> Response:
    return _headers(JSONResponse(_provider(request).discovery()))


@router.get("/jwks")
async def jwks(request: Request) -> Response:
    return _headers(JSONResponse(_provider(request).jwks()))


@router.get("/authorize")
async def authorize_form(request: Request) -> Response:
    provider = _provider(request)
    oauth = await _oauth_request(request)
    try:
        provider.check_authorization(oauth)
    except OAuth2Error as error:
        return _refusal(request, error)
    persons = await run_in_threadpool(provider.persons)
    params = {k: v for k, v in request.query_params.items() if k in AUTH_PARAMS}
    return _page(
        request,
        "standin_idp/pick.html",
        persons=persons,
        params=params,
        password=idp.DEMO_PERSON_PASSWORD,
        wrong_password=False,
    )


@router.post("/authorize")
async def authorize_pick(request: Request) -> Response:
    provider = _provider(request)
    oauth = await _oauth_request(request)
    form = oauth.form
    try:
        provider.check_authorization(oauth)
    except OAuth2Error as error:
        return _refusal(request, error)
    person: idp.Person | None = None
    if "cancel" not in form:
        person = await run_in_threadpool(provider.person, form.get("person", ""))
        if person is None or form.get("password") != idp.DEMO_PERSON_PASSWORD:
            persons = await run_in_threadpool(provider.persons)
            params = {k: v for k, v in form.items() if k in AUTH_PARAMS}
            return _page(
                request,
                "standin_idp/pick.html",
                401,
                persons=persons,
                params=params,
                password="",
                wrong_password=True,
            )
    return _answer(await run_in_threadpool(provider.authorize, oauth, person))


@router.post("/token")
async def token(request: Request) -> Response:
    provider = _provider(request)
    oauth = await _oauth_request(request)
    return _answer(await run_in_threadpool(provider.token, oauth))


@router.api_route("/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request) -> Response:
    provider = _provider(request)
    info = await run_in_threadpool(provider.userinfo, request.headers.get("authorization", ""))
    if info is None:
        return _headers(
            JSONResponse(
                {"error": "invalid_token"},
                401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        )
    return _headers(JSONResponse(info))
