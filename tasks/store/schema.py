"""The store's layout as numbered migrations, applied in order by the first writer that opens an older
store (`schema_version` keeps the last one applied). Never edit an applied migration: add one."""

from __future__ import annotations

import re
from typing import Any

from tasks.store.sql import Dialect, dialect_of, transaction

BASELINE = """
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
MIGRATIONS: tuple[str, ...] = (
    BASELINE,  # 1: the first layout (stores written before migrations existed have exactly this)
    "ALTER TABLE files ADD COLUMN code VARCHAR",  # 2: the reject code of a rejected file
    # 3: retention writes its intent first (deleted_at NULL until the deletion is confirmed)
    "ALTER TABLE deletions ALTER COLUMN deleted_at DROP NOT NULL; ALTER TABLE deletions ADD COLUMN path VARCHAR;"
    "ALTER TABLE deletions ADD COLUMN planned_at TIMESTAMPTZ",
    # 4: a run's row is written when it starts: running, then completed, failed, or crashed (found
    # still running by a later import of the client: its process died)
    "ALTER TABLE runs ADD COLUMN state VARCHAR; UPDATE runs SET state = 'completed'",
    # 5: the client's side of the folder: the pickup check of a received file (JSON), the outbox of
    # result documents (`version` counts changes, `written_version` the last one written to SFTP)
    # and the samples last written to the client's folder (the digest of the contract they follow)
    "ALTER TABLE files ADD COLUMN pickup VARCHAR;"
    "CREATE TABLE results (client VARCHAR NOT NULL, name VARCHAR NOT NULL, version INTEGER NOT NULL, "
    "changed_at TIMESTAMPTZ NOT NULL, written_version INTEGER, written_at TIMESTAMPTZ, PRIMARY KEY (client, name));"
    "CREATE TABLE samples (client VARCHAR PRIMARY KEY, digest VARCHAR NOT NULL, written_at TIMESTAMPTZ NOT NULL)",
    # 6: the erasure log (GDPR art. 17): who erased one person from a client's data, when, how much; no address
    "CREATE TABLE erasures (client VARCHAR NOT NULL, erased_by VARCHAR NOT NULL, erased_at TIMESTAMPTZ NOT NULL, "
    "contacts INTEGER NOT NULL, row_errors INTEGER NOT NULL, files_rewritten INTEGER NOT NULL, "
    "files_deleted INTEGER NOT NULL)",
    # 7: the name rule's key of each ledger row (`ledger.name_key`, the name in NFC), so the sync looks up
    # only the names it listed, however long the ledger
    "ALTER TABLE files ADD COLUMN name_key VARCHAR; UPDATE files SET name_key = nfc_normalize(name)",
    # 8: its index (DuckDB builds no index in the transaction that filled the column)
    "CREATE INDEX files_name_key ON files (client, name_key)",
)
LATEST = len(MIGRATIONS)


def spelled_for(con: Any, ddl: str) -> str:
    """A migration's DDL as the store's backend spells it (PostgreSQL says DOUBLE PRECISION, normalize(x, NFC))."""
    if dialect_of(con) is not Dialect.POSTGRES:
        return ddl
    return re.sub(r"\bnfc_normalize\((\w+)\)", r"normalize(\1, NFC)", re.sub(r"\bDOUBLE\b", "DOUBLE PRECISION", ddl))


def schema_version(con: Any) -> int:
    """The last migration applied to the store (0 for an empty or pre-migrations store)."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'schema_version' AND table_schema = current_schema()"
    ).fetchone()[0]
    return _applied(con) if found else 0


def _applied(con: Any) -> int:
    """The last migration in `schema_version`, which exists (0 when empty)."""
    return int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)


def migrate(con: Any) -> None:
    """Apply the migrations the store lacks, each in its own transaction with its version. The table of
    versions is made first if missing, so no catalog look-up is needed (1.7 ms on a DuckDB store of
    200 clients' tables, at every writer's open)."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ)")
    for number in range(_applied(con) + 1, LATEST + 1):
        with transaction(con):
            con.execute(spelled_for(con, MIGRATIONS[number - 1]))
            con.execute("INSERT INTO schema_version VALUES (?, now())", [number])
