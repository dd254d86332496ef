"""The ledger: `files` (one row per (client, name) ever taken; the name rule reads it, so rows are
never deleted), `waiting` (files still being written) and `ignored` (re-uploads under a used name)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tasks.store.sql import records


@dataclass(frozen=True)
class KnownFile:
    """What the name rule needs to know of a file already in the ledger."""

    name: str
    received_at: datetime
    sha256: str | None
    size: int | None = None  # size and mtime tell the file we took from a re-upload under its name
    mtime: datetime | None = None


@dataclass(frozen=True)
class ClientLedger:
    """What one client's sync needs from the ledger for the names it listed: the entries of those names,
    the waiting files, and (when a listed name is new to the ledger) the client's first file per hash."""

    known: dict[str, KnownFile]  # listed names the ledger has, by `name_key`: KnownFile.name is as received
    waiting: dict[str, tuple[int, datetime, datetime]]  # name -> size, mtime, first seen with them
    first_by_hash: dict[str, str] = field(default_factory=dict)  # sha256 -> the earliest file with those bytes


def name_key(name: str) -> str:
    """What the name rule compares: the name in Unicode NFC. A Mac sends `café.csv` decomposed (NFD),
    another system composed (NFC); to the client they are one name, so the second is a re-upload.
    Stored with each ledger row (`files.name_key`) so a lookup of listed names is one indexed join."""
    return unicodedata.normalize("NFC", name)


def known_files(con: Any, listed: dict[str, list[str]]) -> dict[str, dict[str, KnownFile]]:
    """For each client, the ledger's entries of the names it listed, by `name_key` (any status, purged too:
    the name rule is forever): one indexed join of the listed names, however long the ledger."""
    known: dict[str, dict[str, KnownFile]] = {client: {} for client in listed}
    pairs = sorted({(client, name_key(name)) for client, names in listed.items() for name in names})
    if pairs:
        rows = con.execute(
            "SELECT f.client, f.name_key, f.name, f.received_at, f.sha256, f.size, f.mtime FROM files AS f JOIN "
            "(SELECT unnest(?::VARCHAR[]) AS client, unnest(?::VARCHAR[]) AS name_key) AS l "
            "ON f.client = l.client AND f.name_key = l.name_key",
            [[client for client, _ in pairs], [key for _, key in pairs]],
        ).fetchall()
        for client, key, *entry in rows:
            known[client][key] = KnownFile(*entry)
    return known


def sync_ledgers(con: Any, listed: dict[str, list[str]]) -> dict[str, ClientLedger]:
    """The ledgers of these clients for the names each listed (every client gets one, empty if new):
    their `known_files`, waiting files, and the first file per content hash only of clients with a
    listed name the ledger lacks (a file that may be copied, whose bytes may equal an earlier file's)."""
    ledgers = {client: ClientLedger(known, {}) for client, known in known_files(con, listed).items()}
    rows = con.execute(
        "SELECT client, name, size, mtime, first_seen_at FROM waiting WHERE client IN (SELECT unnest(?::VARCHAR[]))",
        [list(listed)],
    ).fetchall()
    for client, name, size, mtime, first in rows:
        ledgers[client].waiting[name] = (size, mtime, first)
    new = sorted(
        {client for client, names in listed.items() if any(name_key(n) not in ledgers[client].known for n in names)}
    )
    if new:
        rows = con.execute(
            "SELECT DISTINCT ON (client, sha256) client, sha256, name FROM files WHERE sha256 IS NOT NULL "
            "AND client IN (SELECT unnest(?::VARCHAR[])) ORDER BY client, sha256, received_at, name",
            [new],
        ).fetchall()
        for client, sha256, name in rows:
            ledgers[client].first_by_hash[sha256] = name
    return ledgers


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
        con.execute("DELETE FROM waiting WHERE client = ? AND name IN (SELECT unnest(?::VARCHAR[]))", [client, names])


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


ARRIVAL_COLUMNS = {  # the ledger columns the sync fills for each file (client and received_at aside)
    "name": "VARCHAR",
    "status": "VARCHAR",
    "reason": "VARCHAR",
    "size": "BIGINT",
    "mtime": "TIMESTAMPTZ",
    "sha256": "VARCHAR",
    "staged_path": "VARCHAR",
    "same_content_as": "VARCHAR",
    "code": "VARCHAR",
    "pickup": "VARCHAR",
}


def record_arrivals(con: Any, client: str, received_at: datetime, rows: list[dict[str, Any]]) -> None:
    """The ledger rows of files the sync has taken (staged) or refused on arrival (rejected), in one statement.

    Each row has the keys of ARRIVAL_COLUMNS (name, status, size and mtime required, the rest may be None)."""
    if not rows:
        return
    columns = ", ".join(ARRIVAL_COLUMNS)
    values = ", ".join(f"unnest(?::{kind}[])" for kind in ARRIVAL_COLUMNS.values())
    con.execute(
        f"INSERT INTO files (client, received_at, name_key, {columns}) SELECT ?, ?, unnest(?::VARCHAR[]), {values}",
        [
            *(client, received_at, [name_key(row["name"]) for row in rows]),
            *([row.get(column) for row in rows] for column in ARRIVAL_COLUMNS),
        ],
    )


# --- status --------------------------------------------------------------------------------------

IMPORT_STATS = (
    "rows_read",
    "rows_imported",
    "rows_rejected",
    "duplicates_removed",
    "emails_merged",
    "new_contacts",
    "updated_contacts",
)
FILE_COLUMNS = ", ".join(
    (
        "name, status, reason, code, received_at, size, sha256, same_content_as, format, encoding, delimiter, warnings",
        *IMPORT_STATS,
        "imported_at, purged_at",
    )
)


def _by_client(con: Any, columns: str, table: str, clients: list[str], order: str) -> dict[str, list[dict[str, Any]]]:
    """`SELECT columns FROM table` of these clients in one query, per client in `order`.

    Every client listed gets a list, empty if it has no rows."""
    grouped: dict[str, list[dict[str, Any]]] = {client: [] for client in clients}
    sql = f"SELECT client, {columns} FROM {table} WHERE client IN (SELECT unnest(?::VARCHAR[])) ORDER BY {order}"
    for row in records(con, sql, [clients]):
        grouped[row.pop("client")].append(row)
    return grouped


def _newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sorted by `received_at`, newest first after the files not received yet (waiting); ties keep their order."""
    return sorted(rows, key=lambda r: -r["received_at"].timestamp() if r["received_at"] else float("-inf"))


def client_files(con: Any, clients: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per client, every file for `status`: ledger rows, waiting files and ignored re-uploads, newest first.

    One query per table for all the clients (`status` reads a thousand of them)."""
    ledger = _by_client(con, FILE_COLUMNS, "files", clients, "received_at, name")
    waiting = _by_client(
        con,
        "name, 'waiting' AS status, 'still being uploaded (size or time changing)' AS reason, "
        "NULL AS received_at, size",
        "waiting",
        clients,
        "first_seen_at, name",
    )
    ignored = _by_client(
        con, "name, 'ignored' AS status, reason, seen_at AS received_at, size", "ignored", clients, "seen_at, name"
    )
    for rows in ledger.values():
        for row in rows:
            if row["purged_at"] is not None:
                row["outcome"], row["status"] = row["status"], FileStatus.PURGED
    return {client: _newest_first(ledger[client] + waiting[client] + ignored[client]) for client in clients}


def file_status(con: Any, client: str, name: str) -> str | None:
    """The ledger status of a file (None when the ledger does not know it)."""
    return file_status_and_hash(con, client, name)[0]


def file_status_and_hash(con: Any, client: str, name: str) -> tuple[str | None, str | None]:
    """The ledger status and the sha256 the sync recorded for a file ((None, None) when unknown)."""
    row = con.execute("SELECT status, sha256 FROM files WHERE client = ? AND name = ?", [client, name]).fetchone()
    return (row[0], row[1]) if row else (None, None)


def staged_files(con: Any, client: str, before: datetime | None) -> list[str]:
    """Names of the client's staged files received before `before` (all when None), oldest first."""
    rows = con.execute(
        "SELECT name FROM files WHERE client = ? AND status = 'staged' AND purged_at IS NULL "
        "AND (CAST(? AS TIMESTAMPTZ) IS NULL OR received_at < ?) ORDER BY received_at, name",
        [client, before, before],
    ).fetchall()
    return [name for (name,) in rows]


class FileStatus(StrEnum):
    """A file's status in `status`: the ledger's (staged, imported, rejected, purged), or waiting and ignored."""

    WAITING = "waiting"
    STAGED = "staged"
    IMPORTED = "imported"
    REJECTED = "rejected"
    IGNORED = "ignored"
    PURGED = "purged"


@dataclass(frozen=True)
class FileResult:
    """How an import closed a staged file: imported (with its statistics) or rejected (reason and code)."""

    client: str
    name: str
    status: FileStatus  # IMPORTED or REJECTED
    run_id: str
    imported_at: datetime
    reason: str | None = None
    code: str | None = None  # the RejectCode of a rejected file
    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    warnings: tuple[str, ...] = ()
    stats: dict[str, int] = field(default_factory=dict)  # IMPORT_STATS
    read_seconds: float = 0.0
    upsert_seconds: float = 0.0


def record_file_result(con: Any, result: FileResult) -> None:
    """Close a staged file's ledger row with its result (in the file's transaction)."""
    if result.status not in (FileStatus.IMPORTED, FileStatus.REJECTED) or set(result.stats) - set(IMPORT_STATS):
        raise ValueError("status must be imported|rejected and stats only the import statistics")
    con.execute(
        f"""
        UPDATE files SET status = ?, reason = ?, code = ?, run_id = ?, imported_at = ?, format = ?, encoding = ?,
               delimiter = ?, warnings = ?, read_seconds = ?, upsert_seconds = ?,
               {", ".join(f"{key} = ?" for key in IMPORT_STATS)}
        WHERE client = ? AND name = ?
        """,
        [
            *(str(result.status), result.reason, result.code, result.run_id, result.imported_at, result.format),
            *(result.encoding, result.delimiter, "\n".join(result.warnings) or None, result.read_seconds),
            *(result.upsert_seconds, *(result.stats.get(key) for key in IMPORT_STATS), result.client, result.name),
        ],
    )


def ledger_entries(con: Any, client: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The ledger rows of the given names: status, received_at, imported_at, purged_at, and the kind
    and state of the run that closed the file (None while staged)."""
    rows = records(
        con,
        "SELECT f.name, f.status, f.received_at, f.imported_at, f.purged_at, r.kind AS run_kind, "
        "r.state AS run_state FROM files AS f LEFT JOIN runs AS r ON r.run_id = f.run_id "
        "WHERE f.client = ? AND f.name IN (SELECT unnest(?::VARCHAR[]))",
        [client, names],
    )
    return {row["name"]: row for row in rows}
