"""The `backfill` flow on the Prefect harness against a real SFTP server: imports now, refuses clearly."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.importing import ledger
from tests.sftp_fixtures import SftpTarget

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL

CSV = (
    b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
    b"ada@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\n"
)


def put(folder: Path, name: str) -> None:
    path = folder / name
    path.write_bytes(CSV)
    stamp = time.time() - 3600
    os.utime(path, (stamp, stamp))


@pytest.mark.usefixtures("prefect_harness")
def test_backfill_imports_now_and_refuses_what_it_cannot(asyncssh_target: SftpTarget) -> None:
    from flows.backfill import backfill

    put(asyncssh_target.client_dir("northwind"), "late.csv")
    state = backfill(client="northwind", files=["late.csv"], return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["totals"]["files_imported"] == 1
    assert ledger(asyncssh_target.settings, "northwind")["late.csv"]["status"] == "imported"

    again = backfill(client="northwind", files=["late.csv", "nowhere.csv"], return_state=True)
    assert again.is_failed()
    assert "late.csv was already imported on " in again.message
    assert "the name rule holds: rename the file and upload it again" in again.message

    missing = backfill(client="northwind", files=["nowhere.csv"], return_state=True)
    assert missing.is_failed() and "nowhere.csv is not in northwind's folder on the SFTP server" in missing.message

    unknown = backfill(client="acme", files=["x.csv"], return_state=True)
    assert unknown.is_failed() and "unknown client 'acme'" in unknown.message
