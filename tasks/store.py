"""The DuckDB store: every SQL statement of the platform lives in this module.

Tables
- files: the ledger, one row per (client, name) ever accepted for consideration; the name rule
  reads it, so rows are never deleted (retention sets purged_at and keeps name, hash and stats).
- waiting: files seen on the SFTP server but not yet complete (still being written).
- ignored: re-uploads under a used name, one row per distinct upload (size, mtime).
- row_errors: every rejected row value (line, field, message) of an imported file.
- runs: one row per import run (daily, backfill) with its totals.
- deletions: the retention log (what was deleted, where, when).
- contacts_<client>: one table per client, the merged contacts (see the import functions).

DuckDB admits one read-write process per file: writers are serialised by the Prefect
concurrency limit; readers (`status`) retry briefly while a writer holds the file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    status VARCHAR NOT NULL,            -- staged | imported | rejected
    reason VARCHAR,                     -- why rejected (whole file)
    size BIGINT,
    mtime TIMESTAMPTZ,
    sha256 VARCHAR,
    received_at TIMESTAMPTZ NOT NULL,   -- when the sync saw it complete
    staged_path VARCHAR,
    same_content_as VARCHAR,            -- an earlier file of the client with the same bytes
    format VARCHAR,
    encoding VARCHAR,
    delimiter VARCHAR,
    warnings VARCHAR,
    rows_read INTEGER,
    rows_imported INTEGER,
    rows_rejected INTEGER,
    duplicates_removed INTEGER,
    emails_merged INTEGER,
    new_contacts INTEGER,
    updated_contacts INTEGER,
    imported_at TIMESTAMPTZ,
    run_id VARCHAR,
    read_seconds DOUBLE,
    upsert_seconds DOUBLE,
    purged_at TIMESTAMPTZ,
    PRIMARY KEY (client, name)
);
CREATE TABLE IF NOT EXISTS waiting (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime TIMESTAMPTZ NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL, -- first seen with this size and mtime
    PRIMARY KEY (client, name)
);
CREATE TABLE IF NOT EXISTS ignored (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime TIMESTAMPTZ NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    reason VARCHAR NOT NULL,
    PRIMARY KEY (client, name, size, mtime)
);
CREATE TABLE IF NOT EXISTS row_errors (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    field VARCHAR NOT NULL,
    message VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    client VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,              -- daily | backfill
    cutoff TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    files_imported INTEGER,
    files_rejected INTEGER,
    rows_read INTEGER,
    rows_imported INTEGER,
    rows_rejected INTEGER,
    duplicates_removed INTEGER,
    emails_merged INTEGER,
    new_contacts INTEGER,
    updated_contacts INTEGER
);
CREATE TABLE IF NOT EXISTS deletions (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    sha256 VARCHAR,
    received_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ NOT NULL,
    location VARCHAR NOT NULL           -- sftp | staging
);
"""

LOCK_RETRY_SECONDS = 10.0


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() or "Conflicting" in text


@contextmanager
def open_store(path: Path, *, read_only: bool = False, wait_seconds: float = LOCK_RETRY_SECONDS) -> Iterator[Any]:
    """A connection to the store, retried while another process holds the file.

    A writer creates the file and the schema; a reader of a store that does not exist yet gets an
    empty in-memory store with the schema, so `status` works before the first sync."""
    if read_only and not path.exists():
        con = duckdb.connect(":memory:")
        con.execute(SCHEMA)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_seconds
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        if not read_only:
            con.execute(SCHEMA)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """BEGIN … COMMIT, rolled back on any error: a file's effects land together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _records(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


# --- the sync's ledger -------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownFile:
    """What the name rule needs to know of a file already in the ledger."""

    name: str
    received_at: datetime
    sha256: str | None


def known_files(con: Any, client: str) -> dict[str, KnownFile]:
    """Every name the client has ever had accepted for consideration (any status, purged too)."""
    rows = con.execute("SELECT name, received_at, sha256 FROM files WHERE client = ?", [client]).fetchall()
    return {name: KnownFile(name, received, sha) for name, received, sha in rows}


def waiting_files(con: Any, client: str) -> dict[str, tuple[int, datetime, datetime]]:
    """Files seen but not complete: name -> (size, mtime, first seen with that size and mtime)."""
    rows = con.execute("SELECT name, size, mtime, first_seen_at FROM waiting WHERE client = ?", [client]).fetchall()
    return {name: (size, mtime, first) for name, size, mtime, first in rows}


def record_waiting(con: Any, client: str, name: str, size: int, mtime: datetime, now: datetime) -> None:
    """Remember a file still being written; its clock restarts whenever its size or mtime changes."""
    con.execute(
        """
        INSERT INTO waiting VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (client, name) DO UPDATE SET
            first_seen_at = CASE WHEN waiting.size = excluded.size AND waiting.mtime = excluded.mtime
                                 THEN waiting.first_seen_at ELSE excluded.first_seen_at END,
            size = excluded.size, mtime = excluded.mtime
        """,
        [client, name, size, mtime, now],
    )


def forget_waiting(con: Any, client: str, names: list[str]) -> None:
    """Drop waiting entries that were staged, rejected or have disappeared from the server."""
    if names:
        con.execute("DELETE FROM waiting WHERE client = ? AND name IN (SELECT unnest(?))", [client, names])


def record_ignored(con: Any, client: str, name: str, size: int, mtime: datetime, now: datetime, reason: str) -> bool:
    """Record a re-upload under a used name once per distinct upload; True when it is new."""
    before = con.execute(
        "SELECT count(*) FROM ignored WHERE client = ? AND name = ? AND size = ? AND mtime = ?",
        [client, name, size, mtime],
    ).fetchone()[0]
    if before:
        return False
    con.execute("INSERT INTO ignored VALUES (?, ?, ?, ?, ?, ?)", [client, name, size, mtime, now, reason])
    return True


def file_with_hash(con: Any, client: str, sha256: str) -> str | None:
    """The client's earliest file with these exact bytes, if any."""
    row = con.execute(
        "SELECT name FROM files WHERE client = ? AND sha256 = ? ORDER BY received_at LIMIT 1", [client, sha256]
    ).fetchone()
    return row[0] if row else None


def record_arrival(
    con: Any,
    *,
    client: str,
    name: str,
    status: str,
    size: int,
    mtime: datetime,
    received_at: datetime,
    sha256: str | None = None,
    staged_path: str | None = None,
    same_content_as: str | None = None,
    reason: str | None = None,
) -> None:
    """The ledger row of a file the sync has taken (staged) or refused on arrival (rejected)."""
    con.execute(
        """
        INSERT INTO files (client, name, status, reason, size, mtime, sha256, received_at, staged_path, same_content_as)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [client, name, status, reason, size, mtime, sha256, received_at, staged_path, same_content_as],
    )


# --- status --------------------------------------------------------------------------------------

FILE_COLUMNS = (
    "name, status, reason, received_at, size, sha256, same_content_as, format, encoding, delimiter, warnings, "
    "rows_read, rows_imported, rows_rejected, duplicates_removed, emails_merged, new_contacts, updated_contacts, "
    "imported_at, purged_at"
)


def client_files(con: Any, client: str) -> list[dict[str, Any]]:
    """Every file of a client for `status`: ledger rows, waiting files and ignored re-uploads, newest first."""
    ledger = _records(con, f"SELECT {FILE_COLUMNS} FROM files WHERE client = ?", [client])
    for row in ledger:
        if row["purged_at"] is not None:
            row["outcome"], row["status"] = row["status"], "purged"
    waiting = _records(
        con,
        "SELECT name, 'waiting' AS status, 'still being uploaded (size or time changing)' AS reason, "
        "NULL AS received_at, size FROM waiting WHERE client = ?",
        [client],
    )
    ignored = _records(
        con,
        "SELECT name, 'ignored' AS status, reason, seen_at AS received_at, size FROM ignored WHERE client = ?",
        [client],
    )
    rows = ledger + waiting + ignored
    rows.sort(key=lambda r: -r["received_at"].timestamp() if r["received_at"] else float("-inf"))
    return rows
