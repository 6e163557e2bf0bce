"""Billing tests reuse the corrections fixtures: the demo population with its authorities,
reviewers (reviewer-insurer@ is the adult demo patient's insurer) and page-bound repos."""

from __future__ import annotations

from tests.corrections.conftest import (  # noqa: F401 - fixtures are found by name
    demo,
    repo_of,
    signed_in,
)
