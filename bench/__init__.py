"""medcard benchmarks: one command, figures on SQLite and PostgreSQL (see README.md)."""
