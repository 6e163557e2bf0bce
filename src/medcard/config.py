"""Settings from the environment (prefix ``MEDCARD_``), one object passed down explicitly."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator may change without touching code."""

    model_config = SettingsConfigDict(env_prefix="MEDCARD_", env_file=None, extra="ignore")

    data_dir: Path = Path("var")
    database_url: str = ""
    base_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 16 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1000
    token_issuer: str = "medcard"  # noqa: S105 - an issuer name, not a secret
    token_lifetime_seconds: int = 3600
    db_pool_size: int = 10

    @cached_property
    def resolved_database_url(self) -> str:
        """The configured store, or an SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'medcard.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def signing_key_path(self) -> Path:
        return self.data_dir / "signing-key.json"
