"""`status`: reads the ledger while a writer holds the store, JSON shape, readable table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.cli import main
from tasks import store
from tasks.settings import load_settings
from tests.conftest import EXAMPLE_CLIENTS
from tests.importing import record_arrival
from tests.writers import hold_store

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)  # PostgreSQL readers never wait for a writer
def test_status_waits_for_a_writer_instead_of_failing(home: Path, capsys: object) -> None:
    with load_settings().store.write():
        pass  # the file exists, as after a first sync
    writer = hold_store(1.5)
    started = time.monotonic()
    assert main(["status", "--json", "--client", "northwind"]) == 0
    waited = time.monotonic() - started
    writer.wait(timeout=10)
    report = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert waited > 0.5  # it did wait for the writer to finish
    assert [f["name"] for f in report["clients"][0]["files"]] == ["held.csv"]


def test_status_json_lists_every_kind_of_file(home: Path, capsys: object) -> None:
    now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    with load_settings().store.write() as con:
        record_arrival(
            con, client="northwind", name="a.csv", status="staged", size=10, mtime=now, received_at=now, sha256="f0"
        )
        record_arrival(
            con,
            client="northwind",
            name="b.pdf",
            status="rejected",
            size=5,
            mtime=now,
            received_at=now,
            reason="not accepted",
        )
        store.record_waiting(con, "northwind", "c.csv", 7, now, now)
        assert store.record_ignored(con, "northwind", "a.csv", 11, now, now, "used name")
        assert not store.record_ignored(con, "northwind", "a.csv", 11, now, now, "used name")
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    clients = {c["id"]: c for c in report["clients"]}
    assert set(clients) == {"northwind", "contoso", "fabrikam"}
    files = clients["northwind"]["files"]
    assert sorted((f["name"], f["status"]) for f in files) == [
        ("a.csv", "ignored"),
        ("a.csv", "staged"),
        ("b.pdf", "rejected"),
        ("c.csv", "waiting"),
    ]
    staged = next(f for f in files if f["status"] == "staged")
    assert staged["sha256"] == "f0" and staged["size"] == 10
    assert staged["next_import_at"] == clients["northwind"]["next_import_at"]
    assert main(["status", "--client", "northwind"]) == 0
    table = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "northwind  (next import" in table and "b.pdf" in table and "not accepted" in table


def test_commands_without_a_flow_do_not_import_prefect(home: Path) -> None:
    probe = (
        "import sys; from flows.cli import main; main(['status']); main(['contracts', 'check']);"
        "assert 'prefect' not in sys.modules, 'prefect imported'"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_flows_load_pandas_only_to_read_a_file() -> None:
    """A sync pass with nothing new and an import run with no file (most of them) start 0.4 s sooner and
    smaller: pandas and pandera come with the first file read (a pickup check, an import)."""
    probe = (
        "import sys, flows.cli, flows.hourly_sync, flows.daily_import, flows.import_slot, flows.backfill; "
        "loaded = [m for m in ('pandas', 'pandera') if m in sys.modules]; assert not loaded, loaded; "
        "from tasks.validate import parse_file; assert 'pandera' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_an_import_loads_the_ssh_stack_only_to_write_results() -> None:
    """An import's process reaches its peak (a large file's merge) without asyncssh and sshfs (15 MB): they
    come with the first result written back into the client's folder."""
    probe = (
        "import sys, flows.daily_import, flows.import_slot, tasks.importer, tasks.erasure; "
        "loaded = [m for m in ('asyncssh', 'sshfs') if m in sys.modules]; assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_status_shows_a_changed_contract_and_names_a_broken_one(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clients = home.parent / "clients"
    shutil.copytree(EXAMPLE_CLIENTS, clients)
    home.mkdir(exist_ok=True)  # where the contracts cache is kept
    monkeypatch.setenv("SFTP_IMPORT_CLIENTS_DIR", str(clients))
    northwind = clients / "northwind.yaml"
    original = northwind.read_text(encoding="utf-8")

    def status(text: str) -> subprocess.CompletedProcess[str]:
        """`status --json` in a new process (it reads the contracts cache) after northwind's contract becomes `text`."""
        later = northwind.stat().st_mtime_ns + 10**9  # set: no waiting for the clock to tick
        northwind.write_text(text, encoding="utf-8")
        os.utime(northwind, ns=(later, later))
        return subprocess.run([sys.executable, "-m", "flows.cli", "status", "--json"], capture_output=True, text=True)

    def import_time(done: subprocess.CompletedProcess[str]) -> str:
        """Northwind's next import time of day in the report `status --json` printed."""
        report = json.loads(done.stdout)
        northwind_at = next(c["next_import_at"] for c in report["clients"] if c["id"] == "northwind")
        return datetime.fromisoformat(northwind_at).strftime("%H:%M")

    done = status(original)
    assert done.returncode == 0, done.stderr
    assert import_time(done) == "06:00"
    assert (home / "contracts.pickle").exists()
    done = status(original.replace('import_time: "06:00"', 'import_time: "07:30"'))  # same size
    assert done.returncode == 0, done.stderr
    assert import_time(done) == "07:30"
    done = status(original.replace("Europe/Amsterdam", "Nowhere"))
    assert done.returncode == 1
    assert "northwind.yaml: timezone: 'Nowhere' is not an IANA timezone" in done.stderr
    assert "Traceback" not in done.stderr
    done = status(original)
    assert done.returncode == 0, done.stderr
    assert import_time(done) == "06:00"
