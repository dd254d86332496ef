"""`runs`: one row per import run, written when it starts and completed (or found crashed) later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks.store.ledger import IMPORT_STATS
from tasks.store.sql import records


@dataclass(frozen=True)
class Run:
    """What identifies an import run: its id (the Prefect task run's), client, kind, cut-off and start."""

    run_id: str
    client: str
    kind: str  # daily | backfill
    cutoff: datetime | None
    started_at: datetime


# a run's totals: summed from the ledger rows of the files it closed (parameters: client, run id)
_STATS = ", ".join(f"COALESCE(sum({key}), 0)::INTEGER AS {key}" for key in IMPORT_STATS)
_TOTALS = (
    "SELECT (count(*) FILTER (WHERE status = 'imported'))::INTEGER AS files_imported, "
    f"(count(*) FILTER (WHERE status = 'rejected'))::INTEGER AS files_rejected, {_STATS} "
    "FROM files WHERE client = ? AND run_id = ?"
)
_TOTAL_COLUMNS = ("files_imported", "files_rejected", *IMPORT_STATS)


def start_run(con: Any, run: Run) -> None:
    """A run's row as it starts (`running`). A new run's row is inserted with its totals in one statement
    (1 ms less than `record_run`'s three); a run retried under its id has its row, set by `record_run`."""
    inserted = con.execute(
        f"INSERT INTO runs (run_id, client, kind, cutoff, started_at, state, {', '.join(_TOTAL_COLUMNS)}) "
        f"SELECT ?, ?, ?, ?, ?, 'running', {', '.join(_TOTAL_COLUMNS)} FROM ({_TOTALS}) AS t "
        "WHERE NOT EXISTS (SELECT 1 FROM runs WHERE run_id = ?) RETURNING run_id",
        [run.run_id, run.client, run.kind, run.cutoff, run.started_at, run.client, run.run_id, run.run_id],
    ).fetchall()
    if not inserted:
        record_run(con, run, finished_at=None, state="running")


def record_run(con: Any, run: Run, *, finished_at: datetime | None, state: str) -> dict[str, int]:
    """A run's row (state: running, completed, failed, crashed) with its totals, summed from the ledger
    rows it closed (so a retried run counts each file once, and a crashed one is rebuilt exactly).

    The row is updated by its key, or inserted when there is none: DuckDB's INSERT … ON CONFLICT costs
    2 ms more than both. Call holding the client's write lock (one writer of a run's row)."""
    (totals,) = records(con, _TOTALS, [run.client, run.run_id])
    written = {"finished_at": finished_at, "state": state, **totals}
    updated = con.execute(
        f"UPDATE runs SET {', '.join(f'{column} = ?' for column in written)} WHERE run_id = ? RETURNING run_id",
        [*written.values(), run.run_id],
    ).fetchall()
    if not updated:
        columns = ["run_id", "client", "kind", "cutoff", "started_at", *written]
        con.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [run.run_id, run.client, run.kind, run.cutoff, run.started_at, *written.values()],
        )
    return {key: int(value) for key, value in totals.items()}


def close_crashed_runs(con: Any, client: str, now: datetime, starting: str) -> list[str]:
    """Mark the client's runs still `running` as crashed, their totals rebuilt from the ledger; their ids.

    Call holding the client's write lock (`Store.write(client=…)`) as run `starting` starts: an import
    holds it from its run's start to its end, so a run still running then is one whose process died.
    Not `starting` itself: that is a retry after its own attempt failed, which goes on as the same run."""
    crashed = [
        Run(**row)
        for row in records(
            con,
            "SELECT run_id, client, kind, cutoff, started_at FROM runs "
            "WHERE client = ? AND state = 'running' AND run_id <> ?",
            [client, starting],
        )
    ]
    for run in crashed:
        last = con.execute(
            "SELECT max(imported_at) FROM files WHERE client = ? AND run_id = ?", [client, run.run_id]
        ).fetchone()[0]
        record_run(con, run, finished_at=last or now, state="crashed")
    return [run.run_id for run in crashed]


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
