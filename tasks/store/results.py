"""The client's folder: the result documents due (`results`) and the samples written (`samples`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasks.store.ledger import IMPORT_STATS
from tasks.store.sql import records

ResultKey = tuple[str, str, int]  # client, name, version of its result document
RESULT_COLUMNS = (
    "name, status, reason, code, received_at, size, sha256, same_content_as, format, encoding, delimiter, "
    f"warnings, {', '.join(IMPORT_STATS)}, imported_at, purged_at, pickup"
)


def mark_results(con: Any, client: str, names: list[str], now: datetime) -> None:
    """The result documents of these names changed at `now`: the next writer writes them (the outbox)."""
    if names:
        con.execute(
            "INSERT INTO results (client, name, version, changed_at) SELECT ?, unnest(?::VARCHAR[]), 1, ? "
            "ON CONFLICT (client, name) DO UPDATE SET version = results.version + 1, changed_at = excluded.changed_at",
            [client, sorted(set(names)), now],
        )


def pending_results(con: Any, clients: list[str]) -> list[dict[str, Any]]:
    """The result documents of these clients changed since last written: client, name, version, changed_at."""
    return records(
        con,
        "SELECT client, name, version, changed_at FROM results WHERE client IN (SELECT unnest(?::VARCHAR[])) "
        "AND (written_version IS NULL OR written_version < version) ORDER BY client, name",
        [clients],
    )


def clients_with_pending_results(con: Any, clients: list[str]) -> set[str]:
    """The clients among these with a result document still to write (a write that failed is retried)."""
    return {row["client"] for row in pending_results(con, clients)}


def _keyed(con: Any, sql: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows of `sql` (selecting client and name first, with a `(client, name) IN` placeholder pair) by key."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in keys}
    if not keys:  # nothing to look up: no query
        return grouped
    for row in records(con, sql, [[k[0] for k in keys], [k[1] for k in keys]]):
        grouped[(row.pop("client"), row["name"])].append(row)
    return grouped


def result_files(con: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The ledger rows (outcome, statistics, pickup check) of these (client, name) files, in one query."""
    sql = (
        f"SELECT client, {RESULT_COLUMNS} FROM files "
        "WHERE (client, name) IN (SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]))"
    )
    return {key: rows[0] for key, rows in _keyed(con, sql, keys).items() if rows}


def ignored_uploads(con: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The re-uploads ignored under these (client, name) names, oldest first: seen_at, size, reason."""
    sql = (
        "SELECT client, name, seen_at, size, reason FROM ignored "
        "WHERE (client, name) IN (SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])) ORDER BY seen_at, size"
    )
    return _keyed(con, sql, keys)


def row_errors_of(con: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every row error of these (client, name) files, in line order: name, line, field, message."""
    sql = (
        "SELECT client, name, line, field, message FROM row_errors "
        "WHERE (client, name) IN (SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])) ORDER BY line, field, message"
    )
    return _keyed(con, sql, keys)


def record_results_written(con: Any, written: list[ResultKey], now: datetime) -> None:
    """These result document versions are in the clients' folders (a later version stays pending)."""
    if written:
        con.execute(
            "UPDATE results SET written_version = greatest(COALESCE(written_version, 0), w.v), written_at = ? "
            "FROM (SELECT unnest(?::VARCHAR[]) AS c, unnest(?::VARCHAR[]) AS n, unnest(?::INTEGER[]) AS v) AS w "
            "WHERE results.client = w.c AND results.name = w.n",
            [now, *([key[i] for key in written] for i in range(3))],
        )


def forget_results(con: Any, client: str, names: list[str]) -> None:
    """Nothing left to write for these names: retention deleted their uploads and results."""
    if names:
        con.execute("DELETE FROM results WHERE client = ? AND name IN (SELECT unnest(?::VARCHAR[]))", [client, names])


def samples_digests(con: Any, clients: list[str]) -> dict[str, str]:
    """Per client, the digest of the contract its samples folder was last written from (absent: never)."""
    rows = con.execute(
        "SELECT client, digest FROM samples WHERE client IN (SELECT unnest(?::VARCHAR[]))", [clients]
    ).fetchall()
    return dict(rows)


def record_samples(con: Any, client: str, digest: str, now: datetime) -> None:
    """The client's samples folder now follows the contract of that digest."""
    con.execute(
        "INSERT INTO samples VALUES (?, ?, ?) ON CONFLICT (client) DO UPDATE SET digest = excluded.digest, "
        "written_at = excluded.written_at",
        [client, digest, now],
    )
