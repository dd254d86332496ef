"""Writers in parallel: one client's imports run one at a time and import each file once; on PostgreSQL
another client's import never waits for them, and a killed holder's lock is free at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from tasks import store
from tasks.settings import load_settings
from tasks.store import Store
from tests.conftest import REPO
from tests.importing import BASE_TIME, CLIENTS, contacts, ledger, stage_bytes, stage_records
from tests.writers import hold_store

HEADER = b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
FILES = 6
LOCK_BOUND_SECONDS = 60.0  # a generous bound on waiting for a lock: PostgreSQL frees a dead holder's at once


def _stage(client: str) -> None:
    settings = load_settings()
    for n in range(FILES):
        rows = b"".join(f"p{n}-{i}@example.com,P{i},,{i:03d},01/02/2026,{i}.5,SMB\n".encode() for i in range(50))
        shared = f"all@example.com,N{n},,,,{n},\n".encode()  # one contact every file updates
        stage_bytes(settings, client, f"{n}.csv", HEADER + rows + shared, BASE_TIME + timedelta(minutes=n))


def _import(client: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.crash_import", client], cwd=REPO, env=dict(os.environ))


def test_two_imports_of_one_client_at_once_import_each_file_exactly_once(backend: Store) -> None:
    _stage("northwind")
    runs = [_import("northwind"), _import("northwind")]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    files = ledger(load_settings(), "northwind")
    assert {name: row["status"] for name, row in files.items()} == {f"{n}.csv": "imported" for n in range(FILES)}
    assert sum(row["new_contacts"] for row in files.values()) == FILES * 50 + 1
    assert sum(row["updated_contacts"] for row in files.values()) == FILES - 1  # all@ changed by each later file
    assert len(contacts(load_settings(), CLIENTS["northwind"])) == FILES * 50 + 1
    with backend.read() as con:
        totals = con.execute("SELECT sum(files_imported), count(*) FROM runs WHERE state = 'completed'").fetchone()
    assert tuple(totals) == (FILES, 2)  # one run took every file, the other found none left


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_another_clients_import_runs_while_a_client_is_held_and_a_killed_holders_lock_frees(
    backend: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    contoso = CLIENTS["contoso"]
    records = [{f.id: None for f in contoso.fields} | {"Email": f"c{i}@example.com", "Name": "C"} for i in range(3)]
    stage_records(load_settings(), contoso, "c.csv", records)
    holder = hold_store(600, commit=False)  # holds northwind's lock, a transaction open
    other = _import("contoso")
    assert other.wait(timeout=300) == 0 and holder.poll() is None  # contoso imported while northwind is held
    assert {row["status"] for row in ledger(load_settings(), "contoso").values()} == {"imported"}

    os.killpg(holder.pid, signal.SIGKILL)
    killed = time.monotonic()
    with backend.write(client="northwind") as con:
        freed = time.monotonic() - killed
        assert store.file_status(con, "northwind", "held.csv") is None  # its open transaction never landed
    holder.wait()
    assert freed < LOCK_BOUND_SECONDS
    with capsys.disabled():
        print(f"\nnorthwind's lock was free {freed * 1000:.0f} ms after its holder was killed")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_writer_waiting_for_a_clients_lock_says_who_holds_it(
    backend: Store, caplog: pytest.LogCaptureFixture
) -> None:
    holder = hold_store(2, commit=True)
    with caplog.at_level("INFO"), backend.write(client="northwind"):
        pass
    holder.wait()
    assert "northwind: waiting for the client's store lock, held by" in caplog.text
    assert f"(pid {holder.pid})" in caplog.text
