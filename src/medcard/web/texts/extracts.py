"""Texts for extracts from the card and their public verification."""

from __future__ import annotations

RU: dict[str, str] = {}

EN: dict[str, str] = {}
