"""`erasures`: one person erased from a client's data (GDPR art. 17): who ran it, when and how much was
removed, never the address. The SQL is standard (DuckDB and PostgreSQL); `compact_duckdb` is what a
DuckDB file needs so that deleted values do not stay readable in its free blocks."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from tasks.errors import RejectCode
from tasks.store.connection import connect_duckdb
from tasks.store.contacts import contact_columns, contacts_table
from tasks.store.sql import records
from tasks.writer_lock import writer_lock


def erasable_files(con: Any, client: str) -> list[dict[str, Any]]:
    """The client's files that may still have a staged copy (not purged), oldest first."""
    return records(
        con,
        "SELECT name, status, staged_path FROM files "
        "WHERE client = ? AND purged_at IS NULL AND staged_path IS NOT NULL ORDER BY received_at, name",
        [client],
    )


def erase_contact(con: Any, client: str, key: str) -> int:
    """Delete the client's contact of that email key; how many rows went (0 when there is no table yet)."""
    if not contact_columns(con, client):  # no table yet
        return 0
    table = contacts_table(client)
    (found,) = con.execute(f"SELECT count(*) FROM {table} WHERE email_key = ?", [key]).fetchone()
    con.execute(f"DELETE FROM {table} WHERE email_key = ?", [key])
    return int(found)


def erase_row_errors(con: Any, client: str, lines: dict[str, list[int]], key: str) -> int:
    """Delete the row errors of the person's lines (by file) and any whose message quotes the address."""
    keys = [(name, line) for name, numbers in lines.items() for line in numbers]
    deleted = con.execute(
        "DELETE FROM row_errors WHERE client = ? AND (position(? IN lower(message)) > 0 "
        "OR (name, line) IN (SELECT unnest(?::VARCHAR[]), unnest(?::INTEGER[]))) RETURNING line",
        [client, key, [k[0] for k in keys], [k[1] for k in keys]],
    ).fetchall()
    return len(deleted)


def record_rewritten(con: Any, client: str, name: str, sha256: str) -> None:
    """The staged copy was rewritten without the person: the import checks the new bytes' hash."""
    con.execute("UPDATE files SET sha256 = ? WHERE client = ? AND name = ?", [sha256, client, name])


def reject_erased(con: Any, client: str, name: str, reason: str) -> None:
    """A staged copy deleted before its import (a format not rewritten): the file is rejected with the reason."""
    con.execute(
        "UPDATE files SET status = 'rejected', code = ?, reason = ? "
        "WHERE client = ? AND name = ? AND status = 'staged'",
        [RejectCode.ERASED.value, reason, client, name],
    )


def record_erasure(con: Any, client: str, by: str, at: datetime, counts: dict[str, int]) -> None:
    """Log one erasure: who, when, and the counts (contacts, row_errors, files_rewritten, files_deleted)."""
    con.execute(
        "INSERT INTO erasures (client, erased_by, erased_at, contacts, row_errors, files_rewritten, files_deleted) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [client, by, at, counts["contacts"], counts["row_errors"], counts["files_rewritten"], counts["files_deleted"]],
    )


def erasure_log(con: Any, client: str | None = None) -> list[dict[str, Any]]:
    """The erasures, newest first (all clients, or one)."""
    return records(
        con,
        "SELECT client, erased_by, erased_at, contacts, row_errors, files_rewritten, files_deleted FROM erasures "
        "WHERE CAST(? AS VARCHAR) IS NULL OR client = ? ORDER BY erased_at DESC",
        [client, client],
    )


def vacuum_erased(con: Any, client: str) -> None:
    """PostgreSQL: rewrite the tables an erasure deleted from (and their indexes) into new files, so the
    deleted rows' bytes leave the table files at once (the old files go at the next checkpoint; the WAL
    keeps them until it is recycled). The planner's statistics sample column values: the client's are
    gathered again without the person, and `pg_statistic` is rewritten too (its database's owner may).
    Outside a transaction."""
    tables = [contacts_table(client)] if contact_columns(con, client) else []
    con.execute(f"VACUUM FULL {', '.join([*tables, 'row_errors'])}")
    con.execute(f"ANALYZE {', '.join([*tables, 'row_errors'])}")
    con.execute("VACUUM FULL pg_statistic")


def compact_duckdb(path: Path) -> None:
    """Rewrite a DuckDB store file from its live data and put it in place of the old one.

    DuckDB leaves deleted values in free blocks (a CHECKPOINT does not clear them): only a fresh file
    holds none. Done under the store's writer lock; a reader that has the old file open keeps it
    until it closes."""
    fresh = path.with_name(path.name + ".compact")
    fresh.unlink(missing_ok=True)
    with writer_lock(path)():
        old = connect_duckdb(path)
        old.execute("CHECKPOINT")  # the write-ahead log into the file, so the copy sees every commit
        old.close()
        con = connect_duckdb(fresh)
        try:
            name = con.execute("SELECT current_database()").fetchall()[0][0]
            con.execute("ATTACH ? AS old (READ_ONLY)", [str(path)])
            con.execute(f'COPY FROM DATABASE old TO "{name}"')
            con.execute("DETACH old")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(fresh, path)
