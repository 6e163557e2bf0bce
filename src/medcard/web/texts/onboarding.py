"""Texts for getting access: registration, identity check, access requests, SSO consent and document requests."""

from __future__ import annotations

RU: dict[str, str] = {}

EN: dict[str, str] = {}
