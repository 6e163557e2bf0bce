"""``medcard serve --demo`` turns the stand-in national identity provider on and tells
the app where it listens (MEDCARD_HOST/MEDCARD_PORT); plain ``serve`` does not."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from medcard.cli.main import app as cli

KEYS = ("MEDCARD_STANDIN_IDP", "MEDCARD_DEMO_MODE", "MEDCARD_HOST", "MEDCARD_PORT")


def _serve(
    settings: Any, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[dict[str, str], str]:
    """Run ``medcard serve`` up to the point where it would become uvicorn."""
    seen: dict[str, str] = {}

    def execv(_path: str, argv: list[str]) -> NoReturn:
        seen.update({k: os.environ[k] for k in KEYS if k in os.environ})
        seen["argv"] = " ".join(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    env: dict[str, str | None] = {
        "MEDCARD_DATABASE_URL": settings.resolved_database_url,
        "MEDCARD_DATA_DIR": str(settings.data_dir),
        "COLUMNS": "250",
        **dict.fromkeys(KEYS),  # unset during the run, restored afterwards
    }
    result = CliRunner().invoke(cli, ["serve", *args], env=env)
    assert result.exit_code == 0, result.output
    return seen, result.output


def test_serve_demo_turns_the_standin_on_at_its_port(
    settings: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, output = _serve(settings, monkeypatch, "--demo", "--demo-patients", "1", "--port", "8123")
    assert seen["MEDCARD_STANDIN_IDP"] == "1"
    assert seen["MEDCARD_PORT"] == "8123"
    assert seen["MEDCARD_HOST"] == "127.0.0.1"
    assert "--port 8123" in seen["argv"]
    assert "http://localhost:8123/auth/sso" in output


def test_plain_serve_leaves_it_off(
    settings: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, output = _serve(settings, monkeypatch, "--port", "8124")
    assert "MEDCARD_STANDIN_IDP" not in seen
    assert seen["MEDCARD_PORT"] == "8124"
    assert "/auth/sso" not in output
