"""The workspace pages; ``router`` is what ``medcard.web.pages`` installs.

Pages live in :mod:`medcard.web.workspace.routes`; entry form layouts in ``fields``.
"""

from __future__ import annotations

from medcard.web.workspace.routes import router

__all__ = ["router"]
