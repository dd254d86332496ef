"""`deletions`: retention's intent and log (what was deleted, where, when)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasks.store.sql import records


def files_to_purge(con: Any, client: str, before: datetime) -> list[dict[str, Any]]:
    """The client's ledger files received before `before` and not purged yet, oldest first."""
    return records(
        con,
        "SELECT name, sha256, received_at, size, mtime, staged_path FROM files "
        "WHERE client = ? AND received_at < ? AND purged_at IS NULL ORDER BY received_at, name",
        [client, before],
    )


def pending_deletions(con: Any, client: str) -> list[dict[str, Any]]:
    """The client's deletions planned but not confirmed: what a purge that was killed meant to delete."""
    return records(
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
                f"{sql} WHERE client = ? AND deleted_at IS NULL AND (location, path) IN (SELECT unnest(?::VARCHAR[]), "
                f"unnest(?::VARCHAR[]))",
                [*([now] if "SET" in sql else []), client, [k[0] for k in keys], [k[1] for k in keys]],
            )
    if purged:
        con.execute(
            "UPDATE files SET purged_at = ? WHERE client = ? AND name IN (SELECT unnest(?::VARCHAR[])) AND "
            "purged_at IS NULL",
            [now, client, purged],
        )


def deletion_log(con: Any, client: str | None = None) -> list[dict[str, Any]]:
    """The retention log, newest first (one client or all)."""
    return records(
        con,
        "SELECT client, name, sha256, received_at, deleted_at, location FROM deletions "
        "WHERE deleted_at IS NOT NULL AND (CAST(? AS VARCHAR) IS NULL OR client = ?) "
        "ORDER BY deleted_at DESC, client, name, location",
        [client, client],
    )
