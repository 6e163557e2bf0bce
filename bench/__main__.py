"""``python -m bench run --patients N``: see README.md."""

from bench.cli import main

raise SystemExit(main())
