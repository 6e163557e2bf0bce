"""``medcard terminology load FILE`` keeps a newer НСИ МКБ-10 and the newest is used."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medcard.cli.main import app
from medcard.terminology.nsi import MKB10_OID, MKB10_SHIPPED_FILE, load_current_mkb10


def _export(folder: Path, version: str, extra: str = "") -> Path:
    path = folder / f"{MKB10_OID}_{version}.csv"
    shutil.copyfile(MKB10_SHIPPED_FILE, path)
    if extra:
        with path.open("a", encoding="utf-8") as f:
            f.write("\n" + extra + "\n")
    return path


def test_a_newer_version_is_loaded_kept_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("MEDCARD_DATA_DIR", str(data))
    assert load_current_mkb10(data).version.version == "2.27"
    newer = _export(tmp_path, "2.28", '99999;"X";"U99.9";"Проверочная рубрика";;;1;')
    result = CliRunner().invoke(app, ["terminology", "load", str(newer)])
    assert result.exit_code == 0, result.output
    assert "2.28" in result.output
    current = load_current_mkb10(data)
    assert current.version.version == "2.28"
    assert current.name("U99.9") == "Проверочная рубрика"
    shown = CliRunner().invoke(app, ["terminology", "show"])
    assert "версия 2.28" in shown.output


def test_an_older_version_is_kept_but_the_shipped_newer_one_stays_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("MEDCARD_DATA_DIR", str(data))
    older = _export(tmp_path, "2.10")
    result = CliRunner().invoke(app, ["terminology", "load", str(older)])
    assert result.exit_code == 0, result.output
    assert load_current_mkb10(data).version.version == "2.27"


def test_a_file_that_is_not_mkb10_is_refused_and_nothing_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("MEDCARD_DATA_DIR", str(data))
    wrong = tmp_path / "1.2.643.5.1.13.13.11.1070_3.0.csv"
    shutil.copyfile(MKB10_SHIPPED_FILE, wrong)
    result = CliRunner().invoke(app, ["terminology", "load", str(wrong)])
    assert result.exit_code == 1
    assert "Не загружено" in result.output
    assert not (data / "nsi").exists()
