"""The reliability and security battery's short forms (issue 8).

Every test here carries the ``reliability`` marker (``-m "not reliability"`` leaves the
battery out of a quick local run).  Tests that stop the database start a private
PostgreSQL of their own; the machine's shared cluster is never stopped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.procs import postgres_binaries_missing

from tests.conftest import PG_URL

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def backend() -> str:
    """The store this run of the suite uses: "postgresql" or "sqlite"."""
    return "postgresql" if PG_URL else "sqlite"


@pytest.fixture
def needs_private_postgres() -> None:
    why = postgres_binaries_missing()
    if why:
        pytest.skip(f"{why}: a private PostgreSQL cannot be started")


# Browser-like clients and accounts from the sign-in tests (cheap password hashing too).
from tests.auth.conftest import make_account, new_client, web  # noqa: E402, F401
