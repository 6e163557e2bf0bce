"""Texts for the clinician and registrar workspace."""

from __future__ import annotations

RU: dict[str, str] = {}

EN: dict[str, str] = {}
