"""The DuckDB store: every SQL statement of the platform lives in this module (but the merge rule's
query, tasks/merge.py).

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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from schemas.field_types import FIELD_TYPES
from tasks.merge import MergeCounts, distinct_rows_sql, email_key, fold_sql
from tasks.writer_lock import writer_lock

if TYPE_CHECKING:
    import pandas as pd

    from schemas.contract import Contract
    from tasks.errors import RowError

# The store's layout as numbered migrations, applied in order by the first writer that opens an older
# store (`schema_version` keeps the last one applied). Never edit an applied migration: add one.
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
)
LATEST = len(MIGRATIONS)


def schema_version(con: Any) -> int:
    """The last migration applied to the store (0 for an empty or pre-migrations store)."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()[0]
    return int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0) if found else 0


def migrate(con: Any) -> None:
    """Apply the migrations the store lacks, each in its own transaction with its version."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ)")
    for number in range(schema_version(con) + 1, LATEST + 1):
        with transaction(con):
            con.execute(MIGRATIONS[number - 1])
            con.execute("INSERT INTO schema_version VALUES (?, now())", [number])


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


_writers: dict[Path, Any] = {}  # per store: the read-write connection this process keeps while it holds the lock


def _writer(path: Path, wait_seconds: float) -> Any:
    """This process's read-write connection to the store, opened (with the schema) on first use in a
    hold of the writer lock and closed when the hold ends. The threads of a process that hand the
    lock on share it, so opening and the checkpoint on close are paid once per hold, not per write.
    Call with the writer lock held."""
    key = path.resolve()
    con = _writers.get(key)
    if con is None:
        con = _connect(path, False, wait_seconds)
        migrate(con)
        _writers[key] = con
        writer_lock(path).at_release(lambda: _writers.pop(key).close())
    return con


@contextmanager
def open_store(path: Path, *, read_only: bool = False, wait_seconds: float = LOCK_RETRY_SECONDS) -> Iterator[Any]:
    """A connection to the store; a read-write one holds the store's writer lock while it is open.

    A writer creates the file and migrates it to the latest layout; a reader of an older store has
    a writer migrate it first; a reader of a store that does not exist yet gets an empty in-memory
    store with the layout, so `status` works before the first sync."""
    with ExitStack() as stack:
        if read_only and not path.exists():
            con = duckdb.connect(":memory:")
            migrate(con)
        elif read_only:
            con = _connect(path, True, wait_seconds)
            if schema_version(con) < LATEST:
                con.close()
                with open_store(path, wait_seconds=wait_seconds):
                    pass
                con = _connect(path, True, wait_seconds)
        else:
            stack.enter_context(writer_lock(path)())
            con = _writer(path, wait_seconds).cursor()
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
        columns = ", ".join(f"{_quote(f.xml)} {FIELD_TYPES[f.type].sql}" for f in contract.fields)
        con.execute(
            f"CREATE TABLE {table} (email_key VARCHAR NOT NULL, {columns}, "
            "first_file VARCHAR, last_file VARCHAR, updated_at TIMESTAMPTZ)"
        )
        return [f.xml for f in contract.fields]
    for field in contract.fields:
        wanted = FIELD_TYPES[field.type].sql
        if field.xml.lower() not in stored:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {_quote(field.xml)} {wanted}")
        elif stored[field.xml.lower()][1] != wanted:
            raise ContactsLayoutError(
                f"field {field.xml!r} is stored as {stored[field.xml.lower()][1]} but the contract now says {wanted}"
            )
    return [name for key, (name, _) in _contact_columns(con, contract.id).items() if key not in CONTACT_META]


def _listed(column: pd.Series) -> list[Any]:
    """A column's values as a list, None for empty however pandas marks it (None, NaN, NA, NaT)."""
    values = column.astype(object)
    return values.where(values.notna(), None).tolist()


def upsert_contacts(con: Any, contract: Contract, rows: pd.DataFrame, file: str, now: datetime) -> MergeCounts:
    """Merge a file's valid rows (typed values by xml name, and `_line`) into the client's contacts.

    The rows reach DuckDB typed (list parameters of each field's column type). One query of
    `tasks.merge` folds them with the stored contacts of their emails. Only new contacts and
    contacts whose values change are written: their old rows are deleted and the merged rows
    inserted (much cheaper in DuckDB than MERGE INTO / ON CONFLICT). Call inside a transaction."""
    columns = ensure_contacts_table(con, contract)
    table = contacts_table(contract.id)
    fields = {f.xml.lower(): f for f in contract.fields}
    values = [f"v{i}" for i in range(len(columns))]  # stored columns (dropped fields too), by position
    typed = {i: fields[name.lower()] for i, name in enumerate(columns) if name.lower() in fields}
    email = contract.email_field.xml.lower()
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _incoming AS SELECT unnest(?::VARCHAR[]) AS k, unnest(?::INTEGER[]) AS o, "
        + ", ".join(f"unnest(?::{FIELD_TYPES[f.type].sql}[]) AS v{i}" for i, f in typed.items()),
        [
            [email_key(e) for e in rows[contract.email_field.xml]],
            rows["_line"].tolist(),
            *(_listed(rows[f.xml]) for f in typed.values()),
        ],
    )
    (distinct,) = con.execute(
        distinct_rows_sql("_incoming", [f"v{i}" for i, f in typed.items() if f.xml.lower() != email])
    ).fetchone()
    stored = ", ".join(f"{_quote(name)} AS v{i}" for i, name in enumerate(columns))
    incoming = ", ".join(v if i in typed else f"NULL AS {v}" for i, v in enumerate(values))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _upsert AS "
        + fold_sql(
            f"SELECT email_key AS k, {stored}, first_file AS f FROM {table} "
            "WHERE email_key IN (SELECT k FROM _incoming)",
            f"SELECT k, o, {incoming} FROM _incoming",
            values,
        )
    )
    con.execute(f"DELETE FROM {table} WHERE email_key IN (SELECT k FROM _upsert WHERE is_changed)")
    con.execute(
        f"INSERT INTO {table} (email_key, {', '.join(_quote(name) for name in columns)}, first_file, last_file, "
        f"updated_at) SELECT k, {', '.join(values)}, COALESCE(f, ?), ?, ? FROM _upsert WHERE is_new OR is_changed",
        [file, file, now],
    )
    emails, new, updated = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE is_changed) FROM _upsert"
    ).fetchone()
    con.execute("DROP TABLE _upsert")
    con.execute("DROP TABLE _incoming")
    return MergeCounts.of(len(rows), int(distinct), int(emails), int(new), int(updated))


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
    code: str | None = None,
    format: str | None,
    encoding: str | None,
    delimiter: str | None,
    warnings: list[str],
    stats: dict[str, int],
    read_seconds: float,
    upsert_seconds: float,
) -> None:
    """Close a staged file's ledger row: imported (with its statistics) or rejected (with the reason and code)."""
    if status not in ("imported", "rejected") or set(stats) - set(IMPORT_STATS):
        raise ValueError("status must be imported|rejected and stats only the import statistics")
    counts = [stats.get(key) for key in IMPORT_STATS]
    con.execute(
        f"""
        UPDATE files SET status = ?, reason = ?, code = ?, run_id = ?, imported_at = ?, format = ?, encoding = ?,
               delimiter = ?, warnings = ?, read_seconds = ?, upsert_seconds = ?,
               {", ".join(f"{key} = ?" for key in IMPORT_STATS)}
        WHERE client = ? AND name = ?
        """,
        [
            *(status, reason, code, run_id, imported_at, format, encoding, delimiter, "\n".join(warnings) or None),
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


@dataclass(frozen=True)
class Run:
    """What identifies an import run: its id (the Prefect task run's), client, kind, cut-off and start."""

    run_id: str
    client: str
    kind: str  # daily | backfill
    cutoff: datetime | None
    started_at: datetime


def record_run(con: Any, run: Run, *, finished_at: datetime | None, state: str) -> dict[str, int]:
    """A run's row (state: running, completed, failed, crashed) with its totals, summed from the ledger
    rows it closed (so a retried run counts each file once, and a crashed one is rebuilt exactly)."""
    stats = ", ".join(f"COALESCE(sum({key}), 0)::INTEGER" for key in IMPORT_STATS)
    con.execute(
        f"""
        INSERT INTO runs (run_id, client, kind, cutoff, started_at, finished_at, state, files_imported,
                          files_rejected, {", ".join(IMPORT_STATS)})
        SELECT ?, ?, ?, ?, ?, ?, ?, COALESCE(count_if(status = 'imported'), 0)::INTEGER,
               COALESCE(count_if(status = 'rejected'), 0)::INTEGER, {stats}
        FROM files WHERE client = ? AND run_id = ?
        ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, state = excluded.state,
            files_imported = excluded.files_imported, files_rejected = excluded.files_rejected,
            {", ".join(f"{key} = excluded.{key}" for key in IMPORT_STATS)}
        """,
        [run.run_id, run.client, run.kind, run.cutoff, run.started_at, finished_at, state, run.client, run.run_id],
    )
    totals = _records(
        con,
        f"SELECT files_imported, files_rejected, {', '.join(IMPORT_STATS)} FROM runs WHERE run_id = ?",
        [run.run_id],
    )[0]
    return {key: int(value) for key, value in totals.items()}


def close_crashed_runs(con: Any, client: str, now: datetime) -> list[str]:
    """Mark the client's runs still `running` as crashed, their totals rebuilt from the ledger; their ids.

    Call holding the writer lock: an import holds it from its run's start to its end, so a run
    still running then is one whose process died."""
    crashed = [
        Run(**row)
        for row in _records(
            con,
            "SELECT run_id, client, kind, cutoff, started_at FROM runs WHERE client = ? AND state = 'running'",
            [client],
        )
    ]
    for run in crashed:
        last = con.execute(
            "SELECT max(imported_at) FROM files WHERE client = ? AND run_id = ?", [client, run.run_id]
        ).fetchone()[0]
        record_run(con, run, finished_at=last or now, state="crashed")
    return [run.run_id for run in crashed]


# --- retention -----------------------------------------------------------------------------------


def files_to_purge(con: Any, client: str, before: datetime) -> list[dict[str, Any]]:
    """The client's ledger files received before `before` and not purged yet, oldest first."""
    return _records(
        con,
        "SELECT name, sha256, received_at, size, mtime, staged_path FROM files "
        "WHERE client = ? AND received_at < ? AND purged_at IS NULL ORDER BY received_at, name",
        [client, before],
    )


def pending_deletions(con: Any, client: str) -> list[dict[str, Any]]:
    """The client's deletions planned but not confirmed: what a purge that was killed meant to delete."""
    return _records(
        con,
        "SELECT name, location, path, sha256, received_at FROM deletions "
        "WHERE client = ? AND deleted_at IS NULL ORDER BY planned_at, name, location",
        [client],
    )


def plan_deletions(con: Any, client: str, deletions: list[dict[str, Any]], now: datetime) -> None:
    """Write the intent to delete (name, location, path, sha256, received_at) before deleting; in a transaction."""
    for row in deletions:
        con.execute(
            "INSERT INTO deletions (client, name, sha256, received_at, deleted_at, location, path, planned_at) "
            "VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
            [client, row["name"], row["sha256"], row["received_at"], row["location"], row["path"], now],
        )


def record_purge(
    con: Any,
    client: str,
    deleted: list[tuple[str, str]],
    cancelled: list[tuple[str, str]],
    purged: list[str],
    now: datetime,
) -> None:
    """Confirm planned deletions (location, path) done, drop those cancelled, mark ledger names purged.

    Call in a transaction. The ledger rows stay (name, hash, statistics): the name rule still
    refuses a purged name."""
    for sql, keys in (("UPDATE deletions SET deleted_at = ?", deleted), ("DELETE FROM deletions", cancelled)):
        if keys:
            con.execute(
                f"{sql} WHERE client = ? AND deleted_at IS NULL AND (location, path) IN (SELECT unnest(?), unnest(?))",
                [*([now] if "SET" in sql else []), client, [k[0] for k in keys], [k[1] for k in keys]],
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
        "WHERE deleted_at IS NOT NULL AND (CAST(? AS VARCHAR) IS NULL OR client = ?) "
        "ORDER BY deleted_at DESC, client, name, location",
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


# --- the ops overview ----------------------------------------------------------------------------


def record_failed_runs(con: Any, runs: list[Run], now: datetime) -> None:
    """A `failed` row for each run a flow saw fail before the import wrote the run's own row (staging
    unreadable, the store's lock never had, a task never run); a run that has its row keeps it.

    Call in a transaction."""
    for run in runs:
        con.execute(
            "INSERT INTO runs (run_id, client, kind, cutoff, started_at, finished_at, state) "
            "VALUES (?, ?, ?, ?, ?, ?, 'failed') ON CONFLICT (run_id) DO NOTHING",
            [run.run_id, run.client, run.kind, run.cutoff, run.started_at, now],
        )


OVERVIEW_FILES = """
WITH bounds AS (SELECT ?::TIMESTAMPTZ AS since, ?::TIMESTAMPTZ AS until),
f AS (
    SELECT client, name, status, reason, received_at, rows_read, rows_imported, rows_rejected,
           received_at >= since AND received_at < until AS received_in,
           COALESCE(imported_at, received_at) >= since AND COALESCE(imported_at, received_at) < until AS closed_in
    FROM files, bounds WHERE client IN (SELECT unnest(?))
)
SELECT client,
       count_if(received_in) AS received,
       count_if(closed_in AND status = 'imported') AS imported,
       count_if(closed_in AND status = 'rejected') AS rejected,
       COALESCE(sum(rows_imported) FILTER (WHERE closed_in AND status = 'imported'), 0) AS rows_imported,
       COALESCE(sum(rows_rejected) FILTER (WHERE closed_in AND status = 'imported'), 0) AS rows_rejected,
       COALESCE(sum(rows_read) FILTER (WHERE closed_in AND status = 'imported'), 0) AS rows_read,
       arg_max(name, received_at) FILTER (WHERE closed_in AND status = 'rejected') AS rejected_name,
       arg_max(reason, received_at) FILTER (WHERE closed_in AND status = 'rejected') AS rejected_reason,
       max(received_at) AS last_received_at
FROM f GROUP BY client
"""
OVERVIEW_RUNS = """
SELECT client, arg_max(state, COALESCE(finished_at, started_at)) AS last_import_state,
       max(COALESCE(finished_at, started_at)) AS last_import_at
FROM runs WHERE client IN (SELECT unnest(?)) GROUP BY client
"""
OVERVIEW_EMPTY = {  # a client with no file and no run
    "received": 0,
    "imported": 0,
    "rejected": 0,
    "rows_imported": 0,
    "rows_rejected": 0,
    "rows_read": 0,
    "rejected_name": None,
    "rejected_reason": None,
    "last_received_at": None,
    "last_import_state": None,
    "last_import_at": None,
}


def overview_figures(con: Any, clients: list[str], since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    """Per client, what the ops overview shows, in two queries for all the clients.

    Of the files received (`received`) or closed (`imported`, `rejected`, and the rows of the files
    imported) in [since, until): counts, and the newest rejected file's name and reason; the last
    file ever received; the latest import run's state and time (its end, or its start while running)."""
    figures = {client: dict(OVERVIEW_EMPTY) for client in clients}
    for row in _records(con, OVERVIEW_FILES, [since, until, clients]):
        figures[row.pop("client")].update(row)
    for row in _records(con, OVERVIEW_RUNS, [clients]):
        figures[row.pop("client")].update(row)
    return figures


# --- the client's folder: result documents and samples ---------------------------------------------

ResultKey = tuple[str, str, int]  # client, name, version of its result document
RESULT_COLUMNS = (
    "name, status, reason, code, received_at, size, sha256, same_content_as, format, encoding, delimiter, "
    f"warnings, {', '.join(IMPORT_STATS)}, imported_at, purged_at, pickup"
)


def mark_results(con: Any, client: str, names: list[str], now: datetime) -> None:
    """The result documents of these names changed at `now`: the next writer writes them (the outbox)."""
    if names:
        con.execute(
            "INSERT INTO results (client, name, version, changed_at) SELECT ?, unnest(?), 1, ? "
            "ON CONFLICT (client, name) DO UPDATE SET version = results.version + 1, changed_at = excluded.changed_at",
            [client, sorted(set(names)), now],
        )


def pending_results(con: Any, clients: list[str]) -> list[dict[str, Any]]:
    """The result documents of these clients changed since last written: client, name, version, changed_at."""
    return _records(
        con,
        "SELECT client, name, version, changed_at FROM results WHERE client IN (SELECT unnest(?)) "
        "AND (written_version IS NULL OR written_version < version) ORDER BY client, name",
        [clients],
    )


def clients_with_pending_results(con: Any, clients: list[str]) -> set[str]:
    """The clients among these with a result document still to write (a write that failed is retried)."""
    return {row["client"] for row in pending_results(con, clients)}


def _keyed(con: Any, sql: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows of `sql` (selecting client and name first, with a `(client, name) IN` placeholder pair) by key."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in keys}
    for row in _records(con, sql, [[k[0] for k in keys], [k[1] for k in keys]]):
        grouped[(row.pop("client"), row["name"])].append(row)
    return grouped


def result_files(con: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The ledger rows (outcome, statistics, pickup check) of these (client, name) files, in one query."""
    sql = f"SELECT client, {RESULT_COLUMNS} FROM files WHERE (client, name) IN (SELECT unnest(?), unnest(?))"
    return {key: rows[0] for key, rows in _keyed(con, sql, keys).items() if rows}


def ignored_uploads(con: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The re-uploads ignored under these (client, name) names, oldest first: seen_at, size, reason."""
    sql = (
        "SELECT client, name, seen_at, size, reason FROM ignored "
        "WHERE (client, name) IN (SELECT unnest(?), unnest(?)) ORDER BY seen_at, size"
    )
    return _keyed(con, sql, keys)


def row_errors_of(con: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every row error of these (client, name) files, in line order: name, line, field, message."""
    sql = (
        "SELECT client, name, line, field, message FROM row_errors "
        "WHERE (client, name) IN (SELECT unnest(?), unnest(?)) ORDER BY line, field, message"
    )
    return _keyed(con, sql, keys)


def record_results_written(con: Any, written: list[ResultKey], now: datetime) -> None:
    """These result document versions are in the clients' folders (a later version stays pending)."""
    if written:
        con.execute(
            "UPDATE results SET written_version = greatest(COALESCE(written_version, 0), w.v), written_at = ? "
            "FROM (SELECT unnest(?) AS c, unnest(?) AS n, unnest(?::INTEGER[]) AS v) AS w "
            "WHERE results.client = w.c AND results.name = w.n",
            [now, *([key[i] for key in written] for i in range(3))],
        )


def forget_results(con: Any, client: str, names: list[str]) -> None:
    """Nothing left to write for these names: retention deleted their uploads and results."""
    if names:
        con.execute("DELETE FROM results WHERE client = ? AND name IN (SELECT unnest(?))", [client, names])


def samples_digests(con: Any, clients: list[str]) -> dict[str, str]:
    """Per client, the digest of the contract its samples folder was last written from (absent: never)."""
    rows = con.execute("SELECT client, digest FROM samples WHERE client IN (SELECT unnest(?))", [clients]).fetchall()
    return dict(rows)


def record_samples(con: Any, client: str, digest: str, now: datetime) -> None:
    """The client's samples folder now follows the contract of that digest."""
    con.execute(
        "INSERT INTO samples VALUES (?, ?, ?) ON CONFLICT (client) DO UPDATE SET digest = excluded.digest, "
        "written_at = excluded.written_at",
        [client, digest, now],
    )
