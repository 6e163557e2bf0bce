"""Call the FHIR core in-process (CLI, jobs, importers) with the same gate and audit as HTTP."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.fhir import jsonio
from medcard.fhir.router import FhirRequest, FhirResponse, Router
from medcard.fhir.store.repository import Repository

_router = Router()


def call(
    engine: Engine,
    ctx: AccessContext,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    base_url: str = "",
) -> FhirResponse:
    raw = body if isinstance(body, bytes) else (jsonio.dumps(body) if body is not None else b"")
    req = FhirRequest(
        method, path, [], {k.lower(): v for k, v in (headers or {}).items()}, raw, base_url
    )
    if "?" in path:
        from urllib.parse import parse_qsl

        req.path, _, qs = path.partition("?")
        req.query = parse_qsl(qs, keep_blank_values=True)
    repo = Repository(engine, ctx, base_url)
    try:
        return _router.handle(req, repo)
    finally:
        repo.close()
