"""`row_errors`: every rejected row value (line, field, message) of an imported file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasks.store.sql import records

if TYPE_CHECKING:
    from tasks.errors import RowError


def record_row_errors(con: Any, client: str, name: str, errors: list[RowError]) -> None:
    """Store every rejected value of a file (inside the file's transaction)."""
    if errors:
        con.execute(
            "INSERT INTO row_errors SELECT ?, ?, unnest(?::INTEGER[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
            [client, name, [e.line for e in errors], [e.field for e in errors], [e.message for e in errors]],
        )


def file_errors(con: Any, client: str, name: str, limit: int | None = None) -> list[dict[str, Any]]:
    """A file's row errors in line order (the first `limit`, or all)."""
    sql = "SELECT line, field, message FROM row_errors WHERE client = ? AND name = ? ORDER BY line, field, message"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return records(con, sql, [client, name])


FileErrors = dict[str, tuple[list[dict[str, Any]], int]]  # file name: (its first row errors, how many in all)


def client_errors(con: Any, clients: list[str], limit: int) -> dict[str, FileErrors]:
    """Per client, per file with row errors: its first `limit` row errors and how many it has in all.

    One query for all the clients; every client listed gets a dict, empty if it has no row errors."""
    rows = con.execute(
        """
        SELECT client, name, line, field, message, total FROM (
            SELECT client, name, line, field, message, count(*) OVER (PARTITION BY client, name) AS total,
                   row_number() OVER (PARTITION BY client, name ORDER BY line, field, message) AS n
            FROM row_errors WHERE client IN (SELECT unnest(?::VARCHAR[]))
        ) AS numbered WHERE n <= ? ORDER BY client, name, n
        """,
        [clients, limit],
    ).fetchall()
    result: dict[str, FileErrors] = {client: {} for client in clients}
    for client, name, line, field, message, total in rows:
        errors, _ = result[client].get(name, ([], 0))
        errors.append({"line": line, "field": field, "message": message})
        result[client][name] = (errors, int(total))
    return result
