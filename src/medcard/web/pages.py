"""The server-rendered pages, attached to the application in one call."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from medcard.web import billing as billing_pages
from medcard.web import corrections as corrections_pages
from medcard.web import (
    diary,
    extracts,
    family,
    homes,
    me,
    onboarding,
    portal,
    regions,
    signin,
    workspace,
)
from medcard.web.render import HERE


def install(app: FastAPI) -> None:
    """Sign-in and account pages, the portal, the workspace, plus the shared stylesheet."""
    app.include_router(signin.router)
    app.include_router(homes.router)  # /me/role, before /me's pages
    app.include_router(me.router)
    app.include_router(onboarding.router)
    # before the portal, whose /card/{pid}/{rest} catch-all would answer 404 for these
    app.include_router(regions.router)
    app.include_router(diary.router)
    app.include_router(family.router)
    app.include_router(corrections_pages.router)
    app.include_router(billing_pages.router)  # issue 9: /card/{pid}/services, /insurer
    app.include_router(portal.router)
    app.include_router(extracts.router)
    app.include_router(workspace.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
