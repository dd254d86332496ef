"""What the ops overview reads across all clients, in two queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasks.store.sql import latest, records

OVERVIEW_FILES = """
WITH bounds AS (SELECT ?::TIMESTAMPTZ AS since, ?::TIMESTAMPTZ AS until),
f AS (
    SELECT client, name, status, reason, received_at, rows_read, rows_imported, rows_rejected,
           received_at >= since AND received_at < until AS received_in,
           COALESCE(imported_at, received_at) >= since AND COALESCE(imported_at, received_at) < until AS closed_in
    FROM files, bounds WHERE client IN (SELECT unnest(?::VARCHAR[]))
)
SELECT client,
       count(*) FILTER (WHERE received_in) AS received,
       count(*) FILTER (WHERE closed_in AND status = 'imported') AS imported,
       count(*) FILTER (WHERE closed_in AND status = 'rejected') AS rejected,
       COALESCE(sum(rows_imported) FILTER (WHERE closed_in AND status = 'imported'), 0) AS rows_imported,
       COALESCE(sum(rows_rejected) FILTER (WHERE closed_in AND status = 'imported'), 0) AS rows_rejected,
       COALESCE(sum(rows_read) FILTER (WHERE closed_in AND status = 'imported'), 0) AS rows_read,
       {rejected_name} AS rejected_name,
       {rejected_reason} AS rejected_reason,
       max(received_at) AS last_received_at
FROM f GROUP BY client
"""
OVERVIEW_RUNS = """
SELECT client, {last_state} AS last_import_state,
       max(COALESCE(finished_at, started_at)) AS last_import_at
FROM runs WHERE client IN (SELECT unnest(?::VARCHAR[])) GROUP BY client
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
    rejected = "closed_in AND status = 'rejected'"
    files_sql = OVERVIEW_FILES.format(
        rejected_name=latest(con, "name", "received_at", rejected),
        rejected_reason=latest(con, "reason", "received_at", rejected),
    )
    for row in records(con, files_sql, [since, until, clients]):
        figures[row.pop("client")].update(row)
    runs_sql = OVERVIEW_RUNS.format(last_state=latest(con, "state", "COALESCE(finished_at, started_at)"))
    for row in records(con, runs_sql, [clients]):
        figures[row.pop("client")].update(row)
    return figures
