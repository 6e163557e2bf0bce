"""The workspace pages; ``router`` is what ``medcard.web.pages`` installs."""

from __future__ import annotations

from fastapi import APIRouter

from medcard.web.render import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
