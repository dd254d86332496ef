"""Retention against a real SFTP server: old files go from SFTP and staging, the ledger and the name rule stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.cli import main
from schemas.contract import load_contracts
from tasks import retention, sftp, store, sync
from tasks.settings import load_settings
from tests.conftest import EXAMPLE_CLIENTS
from tests.sftp_fixtures import SftpTarget

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL

NORTHWIND = load_contracts(EXAMPLE_CLIENTS)["northwind"]
CSV = b"Email,First Name\nada@example.com,Ada\n"
NOW = datetime.now(UTC).replace(microsecond=0)


def put(folder: Path, name: str, age_days: float, data: bytes = CSV) -> Path:
    path = folder / name
    path.write_bytes(data)
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return path


def sync_at(now: datetime) -> sync.ClientSyncResult:
    settings = load_settings()
    with sftp.connect(settings.sftp) as connection:
        return sync.sync_client(connection, settings, NORTHWIND, now)


def purge(dry_run: bool = False) -> retention.ClientPurge:
    settings = load_settings()
    with sftp.connect(settings.sftp) as connection:
        return retention.purge_client(connection, settings, NORTHWIND, NOW, dry_run=dry_run)


@pytest.fixture
def files(asyncssh_target: SftpTarget) -> Path:
    """old.csv received 40 days ago, recent.csv received now, a stray temporary 50 days old."""
    folder = asyncssh_target.client_dir("northwind")
    put(folder, "old.csv", 41)
    assert sync_at(NOW - timedelta(days=40)).count("staged") == 1
    put(folder, "recent.csv", 0.1, CSV + b"bo@example.com,Bo\n")
    assert sync_at(NOW).count("staged") == 1
    put(folder, "upload.tmp", 50)
    put(folder, "preserved-mtime.csv", 60)  # uploaded just now with an old mtime kept: not received yet
    return folder


def test_dry_run_lists_and_deletes_nothing(files: Path) -> None:
    plan = purge(dry_run=True)
    assert sorted((d.name, d.location) for d in plan.deletions) == [
        ("old.csv", "sftp"),
        ("old.csv", "staging"),
        ("upload.tmp", "sftp"),
    ]
    assert plan.purged == ["old.csv"]
    assert (files / "old.csv").exists() and (files / "upload.tmp").exists()
    with load_settings().store.read() as con:
        assert store.deletion_log(con) == []


def test_purge_deletes_logs_and_keeps_the_name(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings()
    result = purge()
    assert result.summary()["sftp"] == 2 and result.summary()["staging"] == 1
    assert sorted(p.name for p in files.iterdir()) == ["preserved-mtime.csv", "recent.csv"]
    assert sorted(p.name for p in (Path(settings.staging_url) / "northwind").iterdir()) == ["recent.csv"]

    with settings.store.read() as con:
        log = {(row["name"], row["location"]): row for row in store.deletion_log(con, "northwind")}
        ledger = {row["name"]: row for row in store.client_files(con, ["northwind"])["northwind"]}
    assert set(log) == {("old.csv", "sftp"), ("old.csv", "staging"), ("upload.tmp", "sftp")}
    assert log[("old.csv", "staging")]["sha256"] == ledger["old.csv"]["sha256"] is not None
    assert log[("old.csv", "sftp")]["received_at"] == NOW - timedelta(days=40)
    assert log[("upload.tmp", "sftp")]["sha256"] is None
    assert ledger["old.csv"]["status"] == "purged" and ledger["old.csv"]["purged_at"] == NOW
    assert ledger["recent.csv"]["status"] == "staged"
    assert main(["deletions", "--client", "northwind"]) == 0  # ops read the same log
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(log) and any("northwind: old.csv from staging sha256 " in line for line in printed)

    put(files, "old.csv", 0.1, CSV + b"new@example.com,New\n")  # a re-upload under the purged name
    assert sync_at(NOW + timedelta(minutes=5)).count("ignored") == 1
    assert purge().summary() | {"before": ""} == {
        "client": "northwind",
        "before": "",
        "sftp": 0,
        "staging": 0,
        "results": 0,
        "ledger_purged": 0,
        "already_gone": 0,
    }


@pytest.mark.usefixtures("prefect_harness")
def test_retention_flow_purges_every_client(files: Path) -> None:
    from flows.retention import retention_flow

    state = retention_flow(now=NOW, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["clients"]["northwind"]["ledger_purged"] == 1
    assert summary["failed"] == {}
    assert sorted(p.name for p in files.iterdir()) == ["preserved-mtime.csv", "recent.csv"]


# a purge that is SIGKILLed right after its first deletion (the kill is real; the hook only times it)
KILLED_PURGE = """
import os, signal, sys
from datetime import datetime
from schemas.contract import load_contracts
from tasks import retention, sftp
from tasks.settings import load_settings

delete = retention._delete
def delete_then_die(*args):
    delete(*args)
    os.kill(os.getpid(), signal.SIGKILL)
retention._delete = delete_then_die
settings = load_settings()
with sftp.connect(settings.sftp) as connection:
    contract = load_contracts(settings.clients_dir)["northwind"]
    retention.purge_client(connection, settings, contract, datetime.fromisoformat(sys.argv[1]))
"""


def test_a_purge_killed_between_deletions_loses_none_from_the_log(files: Path) -> None:
    settings = load_settings()
    killed = subprocess.run([sys.executable, "-c", KILLED_PURGE, NOW.isoformat()], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    gone = {"old.csv", "upload.tmp"} - {p.name for p in files.iterdir()}
    staged_gone = not (Path(settings.staging_url) / "northwind" / "old.csv").exists()
    assert len(gone) + staged_gone == 1  # killed right after the first of three deletions
    with settings.store.read() as con:
        assert store.deletion_log(con) == []  # nothing confirmed yet
        assert len(store.pending_deletions(con, "northwind")) == 3  # but all three were planned first

    result = purge()  # the rerun deletes what is left and confirms what the killed run deleted
    assert result.summary()["sftp"] == 2 and result.summary()["staging"] == 1
    with settings.store.read() as con:
        log = {(row["name"], row["location"]) for row in store.deletion_log(con, "northwind")}
        assert store.pending_deletions(con, "northwind") == []
        ledger = {row["name"]: row for row in store.client_files(con, ["northwind"])["northwind"]}
    assert log == {("old.csv", "sftp"), ("old.csv", "staging"), ("upload.tmp", "sftp")}
    assert ledger["old.csv"]["status"] == "purged"
