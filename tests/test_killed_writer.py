"""A writer killed while it holds the store (mid-transaction) blocks nobody: every kind of command runs next."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tasks.settings import load_settings
from tests.importing import ledger
from tests.sftp_fixtures import SftpTarget
from tests.writers import hold_store

CSV = (
    b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
    b"ada@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\n"
)
BOUND_SECONDS = 10.0  # from the kill to the next command's end (each takes 1-2 s on the harness)


def put(folder: Path, name: str) -> None:
    (folder / name).write_bytes(CSV)
    stamp = time.time() - 3600
    os.utime(folder / name, (stamp, stamp))


def after_a_killed_writer(run: Callable[[], Any]) -> Any:
    """Kill a writer that holds the store with a transaction open, then run a command; its state."""
    holder = hold_store(600, commit=False)
    os.killpg(holder.pid, signal.SIGKILL)
    killed = time.monotonic()
    holder.wait()
    state = run()
    took = time.monotonic() - killed
    assert state.is_completed(), state.message
    assert took < BOUND_SECONDS, f"{took:.1f} s from the kill to the end of the command"
    return state.result()


@pytest.mark.usefixtures("prefect_harness", "backend")
def test_each_command_runs_after_a_writer_was_killed_holding_the_store(asyncssh_target: SftpTarget) -> None:
    from flows.backfill import backfill
    from flows.daily_import import daily_import
    from flows.hourly_sync import hourly_sync
    from flows.retention import retention_flow

    folder = asyncssh_target.client_dir("northwind")
    put(folder, "monday.csv")
    synced = after_a_killed_writer(lambda: hourly_sync(client="northwind", return_state=True))
    assert synced["clients"]["northwind"]["staged"] == 1

    imported = after_a_killed_writer(lambda: daily_import(client="northwind", now=True, return_state=True))
    assert imported["totals"]["files_imported"] == 1

    put(folder, "late.csv")
    backfilled = after_a_killed_writer(lambda: backfill(client="northwind", files=["late.csv"], return_state=True))
    assert backfilled["totals"]["files_imported"] == 1

    later = datetime.now(UTC) + timedelta(days=load_settings().retention_days + 1)
    purged = after_a_killed_writer(lambda: retention_flow(now=later, return_state=True))
    assert purged["clients"]["northwind"]["ledger_purged"] == 2

    files = ledger(asyncssh_target.settings, "northwind")
    assert "held.csv" not in files  # the killed writers' open transactions never landed
    assert {name: row["status"] for name, row in files.items()} == {"monday.csv": "purged", "late.csv": "purged"}
