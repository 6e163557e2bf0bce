"""Fail when the tables in medcard.db.tables differ from what the migrations build.

Upgrades an empty SQLite database to head, then asks Alembic to compare it with the
models; any difference means a migration is missing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from medcard.config import Settings
from medcard.db.engine import make_engine
from medcard.db.migrate import upgrade
from medcard.db.tables import metadata


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(Settings(data_dir=Path(tmp)))
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        engine.dispose()
    if diff:
        print("The models differ from the migrations; add a revision:", file=sys.stderr)
        for d in diff:
            print("  ", d, file=sys.stderr)
        return 1
    print("migrations match the models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
