"""The ASGI application: a thin FastAPI adapter around the framework-free FHIR core."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from medcard import jobs
from medcard.access.context import AccessContext
from medcard.access.roles import Role
from medcard.access.smart import Scopes
from medcard.access.subjects import active_emergency_patients
from medcard.audit.recorder import DENIED, AuditBuffer
from medcard.auth import epochs
from medcard.auth.epochs import AccountEpochs
from medcard.auth.oauth.revocation import is_revoked, jti_of
from medcard.auth.ratelimit import Limiter, fold_refusal
from medcard.auth.tokens import TokenError, TokenIssuer, load_or_create_key
from medcard.config import Settings
from medcard.db.engine import make_engine
from medcard.db.migrate import current, head, schema_problem
from medcard.fhir.outcomes import FhirError, Issue, outcome, unauthorized
from medcard.fhir.router import FhirRequest, FhirResponse, Router
from medcard.fhir.store.repository import Repository
from medcard.web import standin_idp
from medcard.web.audit_pages import router as audit_router
from medcard.web.landing import landing_page
from medcard.web.oauth import router as oauth_router
from medcard.web.pages import install as install_pages
from medcard.web.sso import router as sso_router

log = logging.getLogger("medcard")
FHIR_JSON = "application/fhir+json"


@dataclass
class Services:
    settings: Settings
    engine: Engine
    issuer: TokenIssuer
    router: Router
    limiter: Limiter


def fhir_response(resp: FhirResponse) -> Response:
    return Response(
        content=resp.body_bytes(),
        status_code=resp.status,
        headers=resp.headers,
        media_type=FHIR_JSON if resp.body is not None else None,
    )


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(outcome(Issue("error", code, message))),
        status_code=status,
        media_type=FHIR_JSON,
        headers=headers,
    )


# Browser apps (issue 3): CORS answers only on the FHIR API and the token and revocation
# endpoints, only for the origins in MEDCARD_CORS_ORIGINS, and never with credentials
# (the API takes bearer tokens, not cookies); pages never answer another site.
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "Accept",
    "If-Match",
    "If-None-Match",
    "If-None-Exist",
    "If-Modified-Since",
    "Prefer",
]
CORS_EXPOSED = ["ETag", "Location", "Content-Location", "Last-Modified"]


def cors_applies(path: str) -> bool:
    if path.startswith("/fhir/.well-known/"):
        return False  # public discovery: web/oauth.py answers any origin
    return path in ("/fhir", "/oauth/token", "/oauth/revoke") or path.startswith("/fhir/")


class ApiCors:
    """Starlette's CORSMiddleware, on the paths ``cors_applies`` names only."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and cors_applies(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Started straight by uvicorn or gunicorn (not through `medcard serve`): still
        # refuse a store whose schema is not this code's, before any job runs on it.
        try:
            problem = schema_problem(app.state.services.engine)
        except (OperationalError, DBAPIError) as exc:
            # Unreachable for now (a restart, a failover): serve 503s and keep /readyz
            # unready, which checks the schema again each time, rather than exit.
            log.warning("database unreachable at start (%s); /readyz waits for it", exc)
            problem = None
        if problem:
            log.error(problem)
            raise RuntimeError(problem)
        jobs.start_embedded_consumer(app.state.services.settings)
        try:
            yield
        finally:
            jobs.stop_embedded_consumer()
            if owns_engine:  # an engine handed in (tests, the CLI) belongs to its owner
                app.state.services.engine.dispose()

    app = FastAPI(
        title="medcard",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    eng = engine or make_engine(settings)
    jobs.configure(settings, eng)
    standin = None
    if settings.standin_idp:  # the demo's own national sign-in (web/standin_idp.py)
        settings, standin = standin_idp.configure(settings, eng)
    services = Services(
        settings=settings,
        engine=eng,
        issuer=TokenIssuer(
            load_or_create_key(settings.signing_key_path),
            settings.token_issuer,
            epochs=AccountEpochs(eng),  # tokens of signed-out accounts stop (issue 14)
        ),
        router=Router(settings.default_page_size, settings.max_page_size),
        limiter=Limiter(eng, settings.redis_url, enabled=settings.rate_limits),
    )
    app.state.services = services
    epochs.configure(settings.redis_url)  # revocations reach every worker at once
    if settings.cors_origins:  # CORS for browser apps (see ApiCors); none when unset
        app.add_middleware(ApiCors, origins=list(settings.cors_origins))
    install_pages(app)
    app.include_router(audit_router)
    app.include_router(sso_router)  # national SSO login (web/sso.py)
    if standin is not None:
        standin_idp.install(app, standin)
    # OAuth2 / SMART (web/oauth.py); before the /fhir catch-all, which would otherwise
    # take /fhir/.well-known/smart-configuration.
    app.include_router(oauth_router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/fhir"):
            return error_response(
                exc.status_code,
                "not-found" if exc.status_code == 404 else "processing",
                str(exc.detail),
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": exc.errors()}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        if isinstance(exc, OperationalError | PoolTimeout) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            return error_response(
                503, "transient", "The database is unavailable; retry shortly", {"Retry-After": "1"}
            )
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "exception", "Internal error; it has been logged")

    # Database errors are answered by the exception middleware too: a handler for
    # Exception runs in ServerErrorMiddleware, which re-raises after answering, and
    # uvicorn then closes the keep-alive connection under the client (the reliability
    # battery saw dropped connections instead of 503s while PostgreSQL restarted).
    app.add_exception_handler(DBAPIError, unexpected)
    app.add_exception_handler(PoolTimeout, unexpected)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(
            landing_page(
                str(request.base_url).rstrip("/"),
                request.query_params.get("lang", "ru"),
                sso=bool(services.settings.sso_providers),
            )
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Response:
        try:
            have = current(services.engine)
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        if have != head():  # never ready on a schema this code does not match
            return JSONResponse(
                {"status": "unavailable", "database": "up", "schema": have, "needs": head()},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "database": "up", "schema": have})

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]

    # The base itself ("POST /fhir" for batch/transaction) must not be redirected to
    # "/fhir/": HTTP clients do not repeat a POST body after a 307.
    @app.api_route("/fhir", methods=methods, include_in_schema=False)
    async def fhir_base(request: Request) -> Response:
        return await fhir(request, "")

    @app.api_route("/fhir/{path:path}", methods=methods, include_in_schema=False)
    async def fhir(request: Request, path: str) -> Response:
        length = request.headers.get("content-length")
        limit = settings.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            return error_response(413, "too-costly", f"The request body exceeds {limit} bytes")
        body = b""
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    return error_response(
                        413, "too-costly", f"The request body exceeds {limit} bytes"
                    )
        except ClientDisconnect:  # gone mid-body: nothing to do, nobody to answer, no error log
            return Response(status_code=400)
        req = FhirRequest(
            method=request.method,
            path=path,
            query=list(request.query_params.multi_items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            base_url=_base_url(request, settings),
        )
        source = request.client.host if request.client else ""
        resp = await run_in_threadpool(_serve, services, req, source)
        return fhir_response(resp)

    return app


def _base_url(request: Request, settings: Settings) -> str:
    if settings.base_url:
        return settings.base_url.rstrip("/") + "/fhir"
    return str(request.base_url).rstrip("/") + "/fhir"


def _serve(services: Services, req: FhirRequest, source: str = "") -> FhirResponse:
    if req.path.strip("/") == "metadata" and req.method == "GET":
        return services.router.handle(req, _anonymous_repo(services))
    auth = req.header("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(
            services, req, "A bearer access token is required (Authorization: Bearer ...)", source
        )
    try:
        # OAuth tokens name this server's public base URL as their issuer (issue 22).
        ctx = services.issuer.context(token.strip(), (req.base_url.removesuffix("/fhir"),))
    except TokenError as exc:
        return _refuse(services, req, str(exc), source, token.strip())
    # OAuth: a revoked access token stops working here (cached up to 5 s per process).
    if is_revoked(services.engine, jti_of(token.strip())):
        return _refuse(services, req, "The access token has been revoked", source)
    if ctx.role == Role.PRACTITIONER:
        # Emergency grants are short-lived and revocable: read them per request.
        ctx = replace(ctx, emergency_patients=active_emergency_patients(services.engine, ctx.actor))
    repo = Repository(services.engine, ctx, req.base_url)
    try:
        return services.router.handle(req, repo)
    finally:
        try:
            repo.close()
        except Exception:
            log.exception("could not write audit entries")
            raise


def _refuse(
    services: Services, req: FhirRequest, reason: str, source: str, token: str = ""
) -> FhirResponse:
    """A 401, audited (issue 3): one ``login`` entry, outcome 4, actor anonymous (a token
    that failed is no proof of who sent it).  The detail names the reason and the type
    asked for, never the token nor an id from the path.  A flood from one source is
    folded into counts (issue 14: ``auth.ratelimit.fold_refusal``)."""
    where = req.path.strip("/").split("/", 1)[0][:64] or "(base)"
    shown = reason
    if token and any(len(part) >= 8 and part in reason for part in [token, *token.split(".")]):
        shown = "The access token is not valid"  # the parser's message quoted the token
    folding = fold_refusal(services.limiter, source or "unknown")
    buffer = AuditBuffer(AccessContext("anonymous", Scopes.parse("")))
    if folding.write_this:
        detail = f"FHIR API {req.method} {where}: {shown}; from {source or 'unknown'}"
        buffer.add("login", outcome=DENIED, detail=detail[:500])
    if folding.note:
        buffer.add("login", outcome=DENIED, detail=f"FHIR API: {folding.note}"[:500])
    buffer.flush_separately(services.engine)
    err = unauthorized(shown)
    return FhirResponse(err.status, err.as_outcome(), err.headers)


def _anonymous_repo(services: Services) -> Any:
    return Repository(services.engine, AccessContext("anonymous", Scopes.parse("")))


__all__ = ["FhirError", "create_app"]
