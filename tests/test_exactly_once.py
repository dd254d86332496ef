"""Exactly once: the import process killed before, during and after a file's transaction, then rerun,
leaves the same contacts, ledger statistics and row errors as an uninterrupted run."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tasks import store
from tasks.settings import Settings, load_settings
from tests.conftest import REPO
from tests.crash_import import CRASHED
from tests.importing import BASE_TIME, CLIENTS, contacts, stage_bytes, stage_records

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL

NORTHWIND = CLIENTS["northwind"]
STATS = (
    "status",
    "reason",
    *store.IMPORT_STATS,
    "format",
    "encoding",
)


def record(email: str, first: str | None = None, amount: str | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {f.id: None for f in NORTHWIND.fields}
    return values | {"email": email, "first_name": first, "amount": Decimal(amount) if amount else None}


def stage_day(settings: Settings) -> None:
    """Four files of one day: overlapping emails, a bad row, a rejected file."""
    at = [BASE_TIME + timedelta(minutes=i) for i in range(4)]
    stage_records(settings, NORTHWIND, "1.csv", [record("a@x.com", "Ann", "1"), record("b@x.com", "Bob")], at[0])
    stage_bytes(
        settings,
        "northwind",
        "2.csv",
        b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
        b"A@x.com,,Smith,007,01/02/2026,2.50,SMB\nb@x.com,,,,,,Huge\nc@x.com,Cy,,,,,\nc@x.com,Cy,,,,,\n",
        at[1],
    )
    stage_bytes(settings, "northwind", "3.csv", b"not,the,header\n1,2,3\n", at[2])
    stage_records(settings, NORTHWIND, "4.xml", [record("b@x.com", None, "9"), record("d@x.com", "Di")], at[3])


def run_import(home: Path, *crash: str, run_id: str | None = None) -> subprocess.CompletedProcess[str]:
    """`tests.crash_import` of northwind in a process of its own (`run_id`: a retry of that run); it ended
    or crashed as asked."""
    env = os.environ | {"SFTP_IMPORT_HOME": str(home)} | ({"CRASH_IMPORT_RUN_ID": run_id} if run_id else {})
    done = subprocess.run(
        [sys.executable, "-m", "tests.crash_import", "northwind", *crash],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, CRASHED), done.stderr
    return done


def snapshot(settings: Settings) -> tuple[Any, ...]:
    with settings.store.read() as con:
        ledger = store.client_files(con, ["northwind"])["northwind"]
        files = {row["name"]: tuple(row[k] for k in STATS) for row in ledger}
        errors = con.execute(
            "SELECT name, line, field, message FROM row_errors ORDER BY name, line, field, message"
        ).fetchall()
    return contacts(settings, NORTHWIND), files, errors


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ...]:
    home = tmp_path_factory.mktemp("reference")
    os.environ["SFTP_IMPORT_HOME"] = str(home)
    try:
        settings = load_settings()
        stage_day(settings)
        assert run_import(home).returncode == 0
        return snapshot(settings)
    finally:
        del os.environ["SFTP_IMPORT_HOME"]


@pytest.mark.parametrize(
    ("point", "file"),
    [("before", 2), ("during", 2), ("after", 2), ("during", 3)],  # file 3 is rejected
)
def test_killed_then_rerun_gives_the_uninterrupted_result(
    home: Path, uninterrupted: tuple[Any, ...], point: str, file: int
) -> None:
    settings = load_settings()
    stage_day(settings)
    assert run_import(home, point, str(file)).returncode == CRASHED
    closed = {n for n, row in snapshot(settings)[1].items() if row[0] != "staged"}
    assert len(closed) == (file if point == "after" else file - 1)
    assert run_import(home).returncode == 0
    assert snapshot(settings) == uninterrupted
    with settings.store.read() as con:  # the killed run's record, rebuilt
        runs = con.execute("SELECT state, files_imported + files_rejected FROM runs ORDER BY started_at").fetchall()
    assert runs == [("crashed", len(closed)), ("completed", 4 - len(closed))]
    contacts_now, files, _ = uninterrupted
    assert {c["email"] for c in contacts_now} == {"A@x.com", "b@x.com", "c@x.com", "d@x.com"}
    assert files["2.csv"][1:9] == (None, 4, 3, 1, 1, 0, 1, 1)
    assert files["3.csv"][0] == "rejected"


def test_a_retry_of_the_killed_run_goes_on_as_that_run(home: Path, uninterrupted: tuple[Any, ...]) -> None:
    """A task retry reuses its run's id: the attempt killed mid-file is not another run to close as crashed;
    the retry's run ends completed with every file once."""
    settings = load_settings()
    stage_day(settings)
    assert run_import(home, "during", "2", run_id="retried").returncode == CRASHED
    retry = run_import(home, run_id="retried")
    assert retry.returncode == 0 and "died running" not in retry.stderr
    assert snapshot(settings) == uninterrupted
    with settings.store.read() as con:
        runs = con.execute("SELECT run_id, state, files_imported + files_rejected FROM runs").fetchall()
    assert runs == [("retried", "completed", 4)]
