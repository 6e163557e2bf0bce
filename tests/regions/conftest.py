"""Fixtures shared by the region, diary and family-history tests (see ``world.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.regions.world import World, build, patient_maker


@pytest.fixture
def world(app: Any, engine: Engine, client: TestClient) -> Iterator[World]:
    w = build(app, engine, client, patient_maker(client))
    with w.anna.http, w.boris.http, w.doctor.http:
        yield w
