"""Texts for the patient portal: the medical card and its sections."""

from __future__ import annotations

RU: dict[str, str] = {}

EN: dict[str, str] = {}
