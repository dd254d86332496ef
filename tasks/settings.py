"""Settings read from environment variables, in one place (see README for the list)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.store import Store


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _seconds(name: str, default: float) -> float:
    """A positive number of seconds."""
    raw = os.environ.get(name)
    value = float(raw) if raw not in (None, "") else default
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {raw}")
    return value


def _share(name: str, default: float) -> float:
    """A share between 0 and 1 (0.1 = 10 %)."""
    raw = os.environ.get(name)
    value = float(raw) if raw not in (None, "") else default
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be a share between 0 and 1 (0.1 = 10 %), not {raw}")
    return value


@dataclass(frozen=True)
class SftpSettings:
    """How to reach the clients' SFTP server. Host keys are always checked against known_hosts."""

    host: str
    port: int
    username: str
    password: str | None
    key_file: str | None
    known_hosts: str | None
    root: str
    timeout_seconds: float  # the bound on connecting and on each operation: a stalled server fails, never hangs

    def __repr__(self) -> str:  # never print the password
        return f"SftpSettings(host={self.host!r}, port={self.port}, username={self.username!r}, root={self.root!r})"


@dataclass(frozen=True)
class Settings:
    """Everything the platform reads from its environment."""

    home: Path
    clients_dir: Path
    staging_url: str
    sftp: SftpSettings
    settle_seconds: int
    retention_days: int
    max_file_bytes: int
    warn_file_bytes: int
    prefect_port: int | None  # the resident Prefect server's port (None: 4200, or a free one when taken)
    prefect_database_url: str | None = field(repr=False)  # the resident server's PostgreSQL (None: SQLite)
    pgp_key_file: Path | None  # the platform's ASCII-armoured private key, for PGP-encrypted uploads
    pgp_passphrase: str | None = field(repr=False)  # its passphrase: never printed, logged or stored
    alert_webhook_url: str | None  # where the alert automations post (deployments/setup.py)
    alert_rejected_share: float  # a file with more rejected rows than this share of its rows raises an alert
    store_url: str = field(repr=False)  # duckdb:///<home>/store.duckdb, or postgresql://… (may hold a password)

    @property
    def db_path(self) -> Path:
        return self.home / "store.duckdb"

    @cached_property
    def store(self) -> Store:
        """The store these settings name, one per process and URL (the store's modules load on first use)."""
        from tasks.store import store_at

        return store_at(self.store_url)


def load_settings() -> Settings:
    """Read the settings now (not at import time), so tests and the demo can set the environment first."""
    env = os.environ
    home = Path(env.get("SFTP_IMPORT_HOME", "./.sftp-import")).resolve()
    return Settings(
        home=home,
        clients_dir=Path(env.get("SFTP_IMPORT_CLIENTS_DIR", "./clients")).resolve(),
        staging_url=env.get("SFTP_IMPORT_STAGING", str(home / "staging")),
        sftp=SftpSettings(
            host=env.get("SFTP_IMPORT_SFTP_HOST", "127.0.0.1"),
            port=_int("SFTP_IMPORT_SFTP_PORT", 22),
            username=env.get("SFTP_IMPORT_SFTP_USERNAME", "sftp-import"),
            password=env.get("SFTP_IMPORT_SFTP_PASSWORD") or None,
            key_file=env.get("SFTP_IMPORT_SFTP_KEY_FILE") or None,
            known_hosts=env.get("SFTP_IMPORT_SFTP_KNOWN_HOSTS") or None,
            root=env.get("SFTP_IMPORT_SFTP_ROOT", "/"),
            timeout_seconds=_seconds("SFTP_IMPORT_SFTP_TIMEOUT_SECONDS", 30.0),
        ),
        settle_seconds=_int("SFTP_IMPORT_SETTLE_SECONDS", 120),
        retention_days=_int("SFTP_IMPORT_RETENTION_DAYS", 35),
        max_file_bytes=_int("SFTP_IMPORT_MAX_FILE_BYTES", 100 * 1024 * 1024),
        warn_file_bytes=_int("SFTP_IMPORT_WARN_FILE_BYTES", 20 * 1024 * 1024),
        prefect_port=int(env["SFTP_IMPORT_PREFECT_PORT"]) if env.get("SFTP_IMPORT_PREFECT_PORT") else None,
        prefect_database_url=env.get("SFTP_IMPORT_PREFECT_DATABASE_URL") or None,
        pgp_key_file=Path(env["SFTP_IMPORT_PGP_KEY_FILE"]) if env.get("SFTP_IMPORT_PGP_KEY_FILE") else None,
        pgp_passphrase=env.get("SFTP_IMPORT_PGP_PASSPHRASE") or None,
        alert_webhook_url=env.get("SFTP_IMPORT_ALERT_WEBHOOK_URL") or None,
        alert_rejected_share=_share("SFTP_IMPORT_ALERT_REJECTED_SHARE", 0.1),
        store_url=env.get("SFTP_IMPORT_STORE_URL") or f"duckdb://{home / 'store.duckdb'}",
    )
