"""The portal pages; ``router`` is what ``medcard.web.pages`` installs.

The medical card (``/card/...``) lives in :mod:`medcard.web.portal.routes`.
"""

from __future__ import annotations

from medcard.web.portal.routes import router

__all__ = ["router"]
