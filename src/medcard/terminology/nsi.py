"""НСИ dictionaries (federal reference data of ЕГИСЗ) as files, with their OID and version.

A dictionary published on the НСИ portal (https://nsi.rosminzdrav.ru) is named by its OID
and version; the CSV export is named ``{OID}_{version}.csv``.  medcard ships one snapshot
of each dictionary it needs under ``terminology/data/`` and reads it as published, so the
names it shows are the official ones, never a paraphrase.  A newer version is read the same
way from the file the portal publishes (:func:`load_mkb10`).

МКБ-10 is dictionary 1.2.643.5.1.13.13.11.1005, «Международная статистическая
классификация болезней и проблем, связанных со здоровьем, 10-го пересмотра»; its CSV has
the columns ``ID;REC_CODE;MKB_CODE;MKB_NAME;ID_PARENT;ADDL_CODE;ACTUAL;DATE``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

DATA_DIR: Final = Path(__file__).parent / "data"

MKB10_OID: Final = "1.2.643.5.1.13.13.11.1005"
MKB10_NAME: Final = (
    "Международная статистическая классификация болезней и проблем, "
    "связанных со здоровьем, 10-го пересмотра"
)
#: Where the shipped snapshot came from: the НСИ export kept in a public repository.
MKB10_SHIPPED_SOURCE: Final = (
    "НСИ Минздрава России, справочник 1.2.643.5.1.13.13.11.1005 версии 2.27; "
    "копия опубликованного файла из https://github.com/ak4nv/mkb10 (resources/)"
)
MKB10_SHIPPED_FILE: Final = DATA_DIR / f"{MKB10_OID}_2.27.csv"

_COLUMNS: Final = ("ID", "MKB_CODE", "MKB_NAME", "ID_PARENT", "ACTUAL")
_FILE_NAME = re.compile(r"^(?P<oid>[0-9.]+?)_(?P<version>\d+(?:\.\d+)*)\.csv$")
#: A code one can write in a record: a category (``J06``) or a subcategory (``J06.9``,
#: ``S72.00``); chapters (``I``…``XXII``) and blocks (``A00-A09``) are headings only.
_RECORD_CODE = re.compile(r"^[A-Z]\d\d(\.\d{1,2})?$")


class DictionaryFileError(ValueError):
    """The file is not an НСИ МКБ-10 export medcard can read."""


@dataclass(frozen=True, slots=True)
class DictionaryVersion:
    """Which dictionary, which version, from where: recorded with everything read from it."""

    oid: str
    version: str
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class Mkb10Entry:
    code: str
    name: str  # exactly as НСИ publishes it
    parent: str  # the parent's code ("" for a chapter)
    actual: bool  # НСИ's ACTUAL flag: 0 marks a code withdrawn from use
    leaf: bool  # no current subdivisions: the most specific code, as records require

    @property
    def recordable(self) -> bool:
        return bool(_RECORD_CODE.match(self.code))


class Mkb10:
    """One version of the НСИ МКБ-10: every row, by code."""

    def __init__(self, version: DictionaryVersion, entries: dict[str, Mkb10Entry]) -> None:
        self.version = version
        self.entries = entries

    def get(self, code: str) -> Mkb10Entry | None:
        return self.entries.get(code)

    def name(self, code: str) -> str | None:
        entry = self.entries.get(code)
        return entry.name if entry is not None else None

    def recordable(self) -> list[Mkb10Entry]:
        """Current categories and subcategories, in the dictionary's order."""
        return [e for e in self.entries.values() if e.actual and e.recordable]


def version_from_file_name(path: Path) -> tuple[str, str]:
    """(OID, version) from an НСИ export's name, ``1.2.643.5.1.13.13.11.1005_2.27.csv``."""
    m = _FILE_NAME.match(path.name)
    if m is None:
        raise DictionaryFileError(f"{path.name}: ожидается имя вида {MKB10_OID}_<версия>.csv")
    return m["oid"], m["version"]


def load_mkb10(path: Path, *, version: str = "", source: str = "") -> Mkb10:
    """Read an НСИ МКБ-10 CSV export (``;``-separated, UTF-8).

    The version comes from the file's name unless given; a file of another dictionary is
    refused rather than read as МКБ-10.
    """
    if not version:
        oid, version = version_from_file_name(path)
        if oid != MKB10_OID:
            raise DictionaryFileError(f"{path.name}: справочник {oid}, а не МКБ-10 ({MKB10_OID})")
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=";")
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DictionaryFileError(f"{path.name}: нет столбцов {', '.join(missing)}")
        rows = [r for r in reader if r["MKB_CODE"]]
    code_by_id = {r["ID"]: r["MKB_CODE"].strip() for r in rows}
    with_children = {code_by_id.get(r["ID_PARENT"], "") for r in rows if r["ACTUAL"].strip() == "1"}
    entries: dict[str, Mkb10Entry] = {}
    for r in rows:
        code = r["MKB_CODE"].strip()
        entries[code] = Mkb10Entry(
            code=code,
            name=r["MKB_NAME"].strip(),
            parent=code_by_id.get(r["ID_PARENT"], ""),
            actual=r["ACTUAL"].strip() == "1",
            leaf=code not in with_children,
        )
    if not entries:
        raise DictionaryFileError(f"{path.name}: в файле нет записей")
    meta = DictionaryVersion(MKB10_OID, version, MKB10_NAME, source or str(path))
    return Mkb10(meta, entries)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def installed_dir(data_dir: Path) -> Path:
    """Where ``medcard terminology load`` keeps the НСИ files a deployment loaded."""
    return data_dir / "nsi"


def current_mkb10_file(data_dir: Path) -> Path:
    """The newest МКБ-10 version: a loaded one if newer than the shipped snapshot."""
    candidates = [MKB10_SHIPPED_FILE]
    folder = installed_dir(data_dir)
    if folder.is_dir():
        for path in folder.glob(f"{MKB10_OID}_*.csv"):
            try:
                version_from_file_name(path)
            except DictionaryFileError:
                continue
            candidates.append(path)
    return max(candidates, key=lambda p: _version_key(version_from_file_name(p)[1]))


def load_current_mkb10(data_dir: Path) -> Mkb10:
    path = current_mkb10_file(data_dir)
    source = MKB10_SHIPPED_SOURCE if path == MKB10_SHIPPED_FILE else f"загружен: {path}"
    return load_mkb10(path, source=source)


def install_mkb10(source: Path, data_dir: Path) -> Mkb10:
    """Check an НСИ МКБ-10 export and keep it under ``data_dir`` for the next start."""
    load_mkb10(source)  # refuses a file that is not an НСИ МКБ-10 export
    folder = installed_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    target.write_bytes(source.read_bytes())
    return load_mkb10(target, source=f"загружен из {source.name}")


@lru_cache(maxsize=1)
def mkb10() -> Mkb10:
    """The МКБ-10 this process uses, read once: the newest of the shipped snapshot (НСИ
    version 2.27) and any version loaded into the data directory."""
    from medcard.config import Settings

    return load_current_mkb10(Settings().data_dir)
