"""The server-rendered pages, attached to the application in one call."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from medcard.web import me, signin
from medcard.web.render import HERE


def install(app: FastAPI) -> None:
    """Sign-in and account pages, plus the stylesheet they share under /static."""
    app.include_router(signin.router)
    app.include_router(me.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
