"""Rendering pages: Jinja2 templates, the language, security headers and error pages.

``PageRoute`` wraps every page handler so that sign-in redirects, CSRF refusals,
malformed forms and unexpected errors all end as a readable page in the reader's
language — never a stack trace or a JSON error meant for API clients.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.exceptions import HTTPException

from medcard import ru_dates
from medcard.auth import csrf
from medcard.auth.accounts import Account, Role
from medcard.regions.zone import times_of
from medcard.web import i18n
from medcard.web.deps import (
    CsrfError,
    LoginRequired,
    SecondFactorRequired,
    engine_of,
    is_https,
    login_url,
    safe_next,
    settings_of,
)

log = logging.getLogger("medcard.web")

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# Dates on pages read as Russian clinicians write them, whatever the browser's locale.
templates.env.filters["ru_date"] = ru_dates.show_day


@pass_context
def _datetime_filter(ctx: Context, value: object) -> str:
    """``|ru_datetime``: the instant in the page's zone (``times``), the zone named."""
    times = ctx.get("times")
    return (times if isinstance(times, ru_dates.Times) else ru_dates.Times()).when(value)


templates.env.filters["ru_datetime"] = _datetime_filter
templates.env.globals["DAY_PATTERN"] = ru_dates.DAY_PATTERN
templates.env.globals["DATETIME_PATTERN"] = ru_dates.DATETIME_PATTERN

SECURITY_HEADERS = {
    # Reset links carry their token in the path: never leak it to another site.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    # Pages show personal data and one-time secrets: keep them out of shared caches.
    "Cache-Control": "no-store",
}


def lang_of(request: Request) -> str:
    return i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE))


def page_times(
    request: Request, account: Account | None = None, patient_id: str = ""
) -> ru_dates.Times:
    """How this page shows instants (``ru_dates.Times``): in the zone of the patient's
    region when the page is about one patient, else of the reader's (see regions.zone)."""
    lang = lang_of(request)
    if account is None:
        signed = getattr(request.state, "signed_in", None)
        account = getattr(signed, "account", None)
    if not patient_id and account is not None and account.role is Role.PATIENT:
        ref = account.fhir_ref
        patient_id = ref.split("/", 1)[1] if ref.startswith("Patient/") else ""
    if account is None and not patient_id:
        return ru_dates.Times(lang=lang)
    return times_of(
        engine_of(request),
        lang,
        patient_id=patient_id,
        organization_ref=account.organization_ref if account is not None else "",
        region=account.region if account is not None else "",
    )


def page(
    request: Request,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    lang = lang_of(request)
    other = "en" if lang == "ru" else "ru"
    context.setdefault("signed_in", getattr(request.state, "signed_in", None))
    if "times" not in context:
        try:
            context["times"] = page_times(request)
        except Exception:  # an error page must render even when the database does not answer
            log.exception("time zone lookup for %s failed", request.url.path)
            context["times"] = ru_dates.Times(lang=lang)
    return templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": i18n.translator(lang),
            "other_lang": other,
            "other_lang_url": f"{request.url.path}?lang={other}",
            "csrf_field": csrf.FIELD,
            **context,
        },
        status_code=status_code,
    )


def error_page(request: Request, status_code: int, key: str) -> HTMLResponse:
    """A page for an error: ``key`` picks ``<key>_title`` and ``<key>_body``."""
    return page(request, "error.html", status_code, error_key=key)


def too_many(request: Request, retry_after: int) -> HTMLResponse:
    """429 for a rate-limited form (auth.ratelimit), saying when to try again."""
    response = error_page(request, 429, "too_many")
    response.headers["Retry-After"] = str(retry_after)
    return response


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a POST the browser follows with a GET."""
    return RedirectResponse(url, status_code=303)


def presession_token(request: Request) -> tuple[str, bool]:
    """The double-submit token for pre-sign-in forms, and whether it is new (set the cookie)."""
    token = request.cookies.get(csrf.PRESESSION_COOKIE, "")
    if 20 <= len(token) <= 256:
        return token, False
    return csrf.new_token(), True


def set_presession_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        csrf.PRESESSION_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings_of(request).secure_cookies or is_https(request),
    )


class PageRoute(APIRoute):
    """An APIRoute for HTML pages: sign-in redirects, error pages, headers, language cookie."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def serve(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as exc:
                flags = {"expired": "1"} if exc.expired else {}
                response = redirect(login_url(exc.next_path, **flags))
            except SecondFactorRequired as exc:
                nxt = safe_next(exc.next_path)
                response = redirect("/login/mfa" + (f"?next={quote(nxt, safe='')}" if nxt else ""))
            except CsrfError:
                response = error_page(request, 403, "csrf")
            except RequestValidationError:
                response = error_page(request, 400, "bad_request")
            except HTTPException as exc:
                key = {403: "forbidden", 404: "not_found"}.get(exc.status_code, "bad_request")
                response = error_page(request, exc.status_code, key)
            except Exception:
                log.exception("page %s %s failed", request.method, request.url.path)
                response = error_page(request, 500, "error")
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            chosen = request.query_params.get("lang")
            if chosen in i18n.LANGS:
                response.set_cookie(
                    i18n.COOKIE, chosen, max_age=365 * 24 * 3600, samesite="lax", httponly=True
                )
            return response

        return serve
