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

DuckDB admits one read-write process per file: every read-write connection holds the store's
writer lock (`tasks.writer_lock`, a kernel file lock freed when its holder dies); readers
(`status`) retry briefly while a writer holds the file.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from tasks.writer_lock import writer_lock

if TYPE_CHECKING:
    import pandas as pd

    from schemas.contract import Contract
    from tasks.errors import RowError

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


def _connect(path: Path, read_only: bool, wait_seconds: float) -> Any:
    """`duckdb.connect`, retried while another process holds the file (a writer, or readers a writer waits for)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


@contextmanager
def open_store(path: Path, *, read_only: bool = False, wait_seconds: float = LOCK_RETRY_SECONDS) -> Iterator[Any]:
    """A connection to the store; a read-write one holds the store's writer lock while it is open.

    A writer creates the file and the schema; a reader of a store that does not exist yet gets an
    empty in-memory store with the schema, so `status` works before the first sync."""
    with ExitStack() as stack:
        if read_only and not path.exists():
            con = duckdb.connect(":memory:")
            con.execute(SCHEMA)
        elif read_only:
            con = _connect(path, True, wait_seconds)
        else:
            stack.enter_context(writer_lock(path)())
            con = _connect(path, False, wait_seconds)
            con.execute(SCHEMA)
        stack.callback(con.close)
        con.execute("SET TimeZone = 'UTC'")
        yield con


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
    size: int | None = None  # size and mtime tell the file we took from a re-upload under its name
    mtime: datetime | None = None


@dataclass(frozen=True)
class ClientLedger:
    """What one client's sync needs from the ledger: every name ever taken, and the waiting files."""

    known: dict[str, KnownFile]
    waiting: dict[str, tuple[int, datetime, datetime]]  # name -> size, mtime, first seen with them


def sync_ledgers(con: Any, clients: list[str]) -> dict[str, ClientLedger]:
    """The ledgers of these clients (every client listed gets one, empty if new), in two queries."""
    ledgers = {client: ClientLedger({}, {}) for client in clients}
    rows = con.execute(
        "SELECT client, name, received_at, sha256, size, mtime FROM files WHERE client IN (SELECT unnest(?))",
        [clients],
    ).fetchall()
    for client, *known in rows:
        ledgers[client].known[known[0]] = KnownFile(*known)
    rows = con.execute(
        "SELECT client, name, size, mtime, first_seen_at FROM waiting WHERE client IN (SELECT unnest(?))", [clients]
    ).fetchall()
    for client, name, size, mtime, first in rows:
        ledgers[client].waiting[name] = (size, mtime, first)
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


ARRIVAL_COLUMNS = {  # the ledger columns the sync fills for each file (client and received_at aside)
    "name": "VARCHAR",
    "status": "VARCHAR",
    "reason": "VARCHAR",
    "size": "BIGINT",
    "mtime": "TIMESTAMPTZ",
    "sha256": "VARCHAR",
    "staged_path": "VARCHAR",
    "same_content_as": "VARCHAR",
}


def record_arrivals(con: Any, client: str, received_at: datetime, rows: list[dict[str, Any]]) -> None:
    """The ledger rows of files the sync has taken (staged) or refused on arrival (rejected), in one statement.

    Each row has the keys of ARRIVAL_COLUMNS (name, status, size and mtime required, the rest may be None)."""
    if not rows:
        return
    columns = ", ".join(ARRIVAL_COLUMNS)
    values = ", ".join(f"unnest(?::{kind}[])" for kind in ARRIVAL_COLUMNS.values())
    con.execute(
        f"INSERT INTO files (client, received_at, {columns}) SELECT ?, ?, {values}",
        [client, received_at, *([row.get(column) for row in rows] for column in ARRIVAL_COLUMNS)],
    )


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
    """The ledger row of one file the sync has taken (staged) or refused on arrival (rejected)."""
    row = {"name": name, "status": status, "reason": reason, "size": size, "mtime": mtime, "sha256": sha256}
    record_arrivals(con, client, received_at, [{**row, "staged_path": staged_path, "same_content_as": same_content_as}])


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
        "name, status, reason, received_at, size, sha256, same_content_as, format, encoding, delimiter, warnings",
        *IMPORT_STATS,
        "imported_at, purged_at",
    )
)


def _by_client(con: Any, columns: str, table: str, clients: list[str]) -> dict[str, list[dict[str, Any]]]:
    """`SELECT columns FROM table` of these clients in one query, per client in the table's (insertion) order.

    Every client listed gets a list, empty if it has no rows."""
    grouped: dict[str, list[dict[str, Any]]] = {client: [] for client in clients}
    sql = f"SELECT client, {columns} FROM {table} WHERE client IN (SELECT unnest(?)) ORDER BY rowid"
    for row in _records(con, sql, [clients]):
        grouped[row.pop("client")].append(row)
    return grouped


def _newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sorted by `received_at`, newest first after the files not received yet (waiting); ties keep their order."""
    return sorted(rows, key=lambda r: -r["received_at"].timestamp() if r["received_at"] else float("-inf"))


def client_files(con: Any, clients: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per client, every file for `status`: ledger rows, waiting files and ignored re-uploads, newest first.

    One query per table for all the clients (`status` reads a thousand of them)."""
    ledger = _by_client(con, FILE_COLUMNS, "files", clients)
    waiting = _by_client(
        con,
        "name, 'waiting' AS status, 'still being uploaded (size or time changing)' AS reason, "
        "NULL AS received_at, size",
        "waiting",
        clients,
    )
    ignored = _by_client(con, "name, 'ignored' AS status, reason, seen_at AS received_at, size", "ignored", clients)
    for rows in ledger.values():
        for row in rows:
            if row["purged_at"] is not None:
                row["outcome"], row["status"] = row["status"], "purged"
    return {client: _newest_first(ledger[client] + waiting[client] + ignored[client]) for client in clients}


# --- the import ----------------------------------------------------------------------------------
# One contacts table per client, `contacts_<id>`: a statement can only reach the table of the
# client id it is given, and an upsert reads and rewrites that client's rows only, however many
# contacts the other clients hold. Columns: email_key, each contract field by its xml name with
# its own type, first_file, last_file, updated_at.

CONTACT_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "email": "VARCHAR",
    "enum": "VARCHAR",
    "integer": "BIGINT",
    "decimal": "DECIMAL(38,10)",
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "boolean": "BOOLEAN",
}
CONTACT_META = ("email_key", "first_file", "last_file", "updated_at")
_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class ContactsLayoutError(Exception):
    """The contract and the stored contacts table disagree in a way the import must not guess at."""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def contacts_table(client: str) -> str:
    """The quoted name of the client's own contacts table; anything but a valid client id is refused."""
    if not _CLIENT_ID.match(client):
        raise ValueError(f"not a valid client id: {client[:40]!r}")
    return _quote(f"contacts_{client}")


def _contact_columns(con: Any, client: str) -> dict[str, tuple[str, str]]:
    """The stored columns of the client's table: lower-cased name -> (name, type), in table order."""
    contacts_table(client)
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
        [f"contacts_{client}"],
    ).fetchall()
    return {name.lower(): (name, kind) for name, kind in rows}


def ensure_contacts_table(con: Any, contract: Contract) -> list[str]:
    """Create the client's table, or add the columns of fields the contract gained; never drop one.

    Returns the stored field columns (fields the contract dropped included, so their data is kept).
    A field whose type changed is refused: converting stored values needs a decision, not a guess."""
    seen: dict[str, str] = {name: name for name in CONTACT_META}
    for field in contract.fields:
        if field.xml.lower() in seen:
            raise ContactsLayoutError(
                f"field {field.xml!r} clashes with column {seen[field.xml.lower()]!r} (names are case-insensitive)"
            )
        seen[field.xml.lower()] = field.xml
    table = contacts_table(contract.id)
    stored = _contact_columns(con, contract.id)
    if not stored:
        columns = ", ".join(f"{_quote(f.xml)} {CONTACT_TYPES[f.type]}" for f in contract.fields)
        con.execute(
            f"CREATE TABLE {table} (email_key VARCHAR NOT NULL, {columns}, "
            "first_file VARCHAR, last_file VARCHAR, updated_at TIMESTAMPTZ)"
        )
        return [f.xml for f in contract.fields]
    for field in contract.fields:
        wanted = CONTACT_TYPES[field.type]
        if field.xml.lower() not in stored:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {_quote(field.xml)} {wanted}")
        elif stored[field.xml.lower()][1] != wanted:
            raise ContactsLayoutError(
                f"field {field.xml!r} is stored as {stored[field.xml.lower()][1]} but the contract now says {wanted}"
            )
    return [name for key, (name, _) in _contact_columns(con, contract.id).items() if key not in CONTACT_META]


def _sql_text(value: Any) -> str | None:
    """A typed value as text DuckDB casts back exactly (decimals without exponent, ISO dates)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return str(value)


def upsert_contacts(con: Any, contract: Contract, rows: pd.DataFrame, file: str, now: datetime) -> tuple[int, int]:
    """Merge one file's merged rows (index = email key) into the client's contacts; (new, updated).

    Per field COALESCE(new, stored): an empty value never erases. Only new contacts and contacts
    whose values actually change are written: their old rows are deleted and the merged rows
    inserted (much cheaper in DuckDB than MERGE INTO / ON CONFLICT). Call inside a transaction."""
    columns = ensure_contacts_table(con, contract)
    table = contacts_table(contract.id)
    import pandas as pd  # not at import time: `status` never needs it

    position = {f.xml.lower(): i for i, f in enumerate(contract.fields)}
    incoming = pd.DataFrame(
        {
            "k": list(rows.index),
            **{f"c{i}": [_sql_text(v) for v in rows[f.xml]] for i, f in enumerate(contract.fields)},
        },
        dtype=object,
    )
    casts = ", ".join(f"CAST(c{i} AS {CONTACT_TYPES[f.type]}) AS c{i}" for i, f in enumerate(contract.fields))
    merged, changed = [], []
    for name in columns:
        column = _quote(name)
        if name.lower() in position:
            new = f"i.c{position[name.lower()]}"
            merged.append(f"COALESCE({new}, c.{column}) AS {column}")
            changed.append(f"({new} IS NOT NULL AND {new} IS DISTINCT FROM c.{column})")
        else:
            merged.append(f"c.{column} AS {column}")
    names = ", ".join(_quote(name) for name in columns)
    con.register("_incoming", incoming)
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _upsert AS
            SELECT i.k AS email_key, {", ".join(merged)},
                   c.email_key IS NULL AS is_new,
                   c.email_key IS NOT NULL AND ({" OR ".join(changed)}) AS is_changed,
                   c.first_file
            FROM (SELECT k, {casts} FROM _incoming) i LEFT JOIN {table} c ON c.email_key = i.k
            """
        )
        con.execute(f"DELETE FROM {table} WHERE email_key IN (SELECT email_key FROM _upsert WHERE is_changed)")
        con.execute(
            f"INSERT INTO {table} (email_key, {names}, first_file, last_file, updated_at) "
            f"SELECT email_key, {names}, COALESCE(first_file, ?), ?, ? FROM _upsert WHERE is_new OR is_changed",
            [file, file, now],
        )
        new, updated = con.execute("SELECT count_if(is_new), count_if(is_changed) FROM _upsert").fetchone()
        con.execute("DROP TABLE _upsert")
    finally:
        con.unregister("_incoming")
    return int(new), int(updated)


def read_contacts(con: Any, contract: Contract) -> list[dict[str, Any]]:
    """The client's merged contacts keyed by the contract's xml names (empty before the first import)."""
    stored = _contact_columns(con, contract.id)
    if not stored:
        return []
    select = ", ".join(
        (_quote(stored[f.xml.lower()][0]) if f.xml.lower() in stored else "NULL") + f" AS {_quote(f.xml)}"
        for f in contract.fields
    )
    return _records(con, f"SELECT {select} FROM {contacts_table(contract.id)} ORDER BY email_key")


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


def record_file_result(
    con: Any,
    *,
    client: str,
    name: str,
    status: str,
    reason: str | None,
    run_id: str,
    imported_at: datetime,
    format: str | None,
    encoding: str | None,
    delimiter: str | None,
    warnings: list[str],
    stats: dict[str, int],
    read_seconds: float,
    upsert_seconds: float,
) -> None:
    """Close a staged file's ledger row: imported (with its statistics) or rejected (with the reason)."""
    if status not in ("imported", "rejected") or set(stats) - set(IMPORT_STATS):
        raise ValueError("status must be imported|rejected and stats only the import statistics")
    counts = [stats.get(key) for key in IMPORT_STATS]
    con.execute(
        f"""
        UPDATE files SET status = ?, reason = ?, run_id = ?, imported_at = ?, format = ?, encoding = ?,
               delimiter = ?, warnings = ?, read_seconds = ?, upsert_seconds = ?,
               {", ".join(f"{key} = ?" for key in IMPORT_STATS)}
        WHERE client = ? AND name = ?
        """,
        [
            *(status, reason, run_id, imported_at, format, encoding, delimiter, "\n".join(warnings) or None),
            *(read_seconds, upsert_seconds, *counts, client, name),
        ],
    )


def record_row_errors(con: Any, client: str, name: str, errors: list[RowError]) -> None:
    """Store every rejected value of a file (inside the file's transaction)."""
    if not errors:
        return
    import pandas as pd

    frame = pd.DataFrame(
        {"line": [e.line for e in errors], "field": [e.field for e in errors], "message": [e.message for e in errors]}
    )
    con.register("_row_errors", frame)
    try:
        con.execute("INSERT INTO row_errors SELECT ?, ?, line, field, message FROM _row_errors", [client, name])
    finally:
        con.unregister("_row_errors")


def file_errors(con: Any, client: str, name: str, limit: int | None = None) -> list[dict[str, Any]]:
    """A file's row errors in line order (the first `limit`, or all)."""
    sql = "SELECT line, field, message FROM row_errors WHERE client = ? AND name = ? ORDER BY line, field, message"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return _records(con, sql, [client, name])


FileErrors = dict[str, tuple[list[dict[str, Any]], int]]  # file name: (its first row errors, how many in all)


def client_errors(con: Any, clients: list[str], limit: int) -> dict[str, FileErrors]:
    """Per client, per file with row errors: its first `limit` row errors and how many it has in all.

    One query for all the clients; every client listed gets a dict, empty if it has no row errors."""
    rows = con.execute(
        """
        SELECT client, name, line, field, message, total FROM (
            SELECT client, name, line, field, message, count(*) OVER (PARTITION BY client, name) AS total,
                   row_number() OVER (PARTITION BY client, name ORDER BY line, field, message) AS n
            FROM row_errors WHERE client IN (SELECT unnest(?))
        ) WHERE n <= ? ORDER BY client, name, n
        """,
        [clients, limit],
    ).fetchall()
    result: dict[str, FileErrors] = {client: {} for client in clients}
    for client, name, line, field, message, total in rows:
        errors, _ = result[client].get(name, ([], 0))
        errors.append({"line": line, "field": field, "message": message})
        result[client][name] = (errors, int(total))
    return result


def record_run(
    con: Any,
    *,
    run_id: str,
    client: str,
    kind: str,
    cutoff: datetime | None,
    started_at: datetime,
    finished_at: datetime,
) -> dict[str, int]:
    """A run's totals, summed from the ledger rows it closed (so a retried run counts each file once)."""
    stats = ", ".join(f"COALESCE(sum({key}), 0)::INTEGER" for key in IMPORT_STATS)
    con.execute(
        f"""
        INSERT INTO runs
        SELECT ?, ?, ?, ?, ?, ?, COALESCE(count_if(status = 'imported'), 0)::INTEGER,
               COALESCE(count_if(status = 'rejected'), 0)::INTEGER, {stats}
        FROM files WHERE client = ? AND run_id = ?
        ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at,
            files_imported = excluded.files_imported, files_rejected = excluded.files_rejected,
            {", ".join(f"{key} = excluded.{key}" for key in IMPORT_STATS)}
        """,
        [run_id, client, kind, cutoff, started_at, finished_at, client, run_id],
    )
    totals = _records(
        con,
        f"SELECT files_imported, files_rejected, {', '.join(IMPORT_STATS)} FROM runs WHERE run_id = ?",
        [run_id],
    )[0]
    return {key: int(value) for key, value in totals.items()}


# --- retention -----------------------------------------------------------------------------------


def files_to_purge(con: Any, client: str, before: datetime) -> list[dict[str, Any]]:
    """The client's ledger files received before `before` and not purged yet, oldest first."""
    return _records(
        con,
        "SELECT name, sha256, received_at, size, mtime, staged_path FROM files "
        "WHERE client = ? AND received_at < ? AND purged_at IS NULL ORDER BY received_at, name",
        [client, before],
    )


def record_purge(con: Any, client: str, deletions: list[dict[str, Any]], purged: list[str], now: datetime) -> None:
    """Log deletions (name, sha256, received_at, location) and mark ledger names purged; call in a transaction.

    The ledger rows stay (name, hash, statistics): the name rule still refuses a purged name."""
    for row in deletions:
        con.execute(
            "INSERT INTO deletions VALUES (?, ?, ?, ?, ?, ?)",
            [client, row["name"], row["sha256"], row["received_at"], now, row["location"]],
        )
    if purged:
        con.execute(
            "UPDATE files SET purged_at = ? WHERE client = ? AND name IN (SELECT unnest(?)) AND purged_at IS NULL",
            [now, client, purged],
        )


def deletion_log(con: Any, client: str | None = None) -> list[dict[str, Any]]:
    """The retention log, newest first (one client or all)."""
    return _records(
        con,
        "SELECT client, name, sha256, received_at, deleted_at, location FROM deletions "
        "WHERE CAST(? AS VARCHAR) IS NULL OR client = ? ORDER BY deleted_at DESC, client, name, location",
        [client, client],
    )


# --- backfill ------------------------------------------------------------------------------------


def ledger_entries(con: Any, client: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The ledger rows of the given names: status, received_at, imported_at, purged_at."""
    rows = _records(
        con,
        "SELECT name, status, received_at, imported_at, purged_at FROM files "
        "WHERE client = ? AND name IN (SELECT unnest(?))",
        [client, names],
    )
    return {row["name"]: row for row in rows}
