"""Fixtures shared by the region, diary and family-history tests (see ``world.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from medcard.auth import passwords
from tests.regions.world import World, build, patient_maker


@pytest.fixture(autouse=True)
def _fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters: every test makes a few accounts."""
    monkeypatch.setattr(
        passwords,
        "HASHER",
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID),
    )


@pytest.fixture
def world(app: Any, engine: Engine, client: TestClient) -> Iterator[World]:
    w = build(app, engine, client, patient_maker(client))
    with w.anna.http, w.boris.http, w.doctor.http:
        yield w
