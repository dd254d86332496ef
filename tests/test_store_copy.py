"""`sftp-import store copy --to postgresql://…`: a DuckDB store moved up into PostgreSQL, whole and verified."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deployments.postgres import Cluster, create_database
from flows.cli import main
from tasks import importer, store
from tasks.settings import Settings, load_settings
from tests.importing import BASE_TIME, CLIENTS, stage_bytes

NORTHWIND = CLIENTS["northwind"]
HEADER = b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"


def _fill(settings: Settings) -> None:
    """A store with something in every table: imports (a bad row among them), waiting, ignored, a purge."""
    stage_bytes(settings, "northwind", "old.csv", HEADER + b"old@example.com,Old,One,001,01/02/2026,1,SMB\n")
    stage_bytes(
        settings,
        "northwind",
        "monday.csv",
        HEADER + b"ada@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\nbad@example.com,Bad,Row,008,99/99/2026,x,SMB\n",
        BASE_TIME + timedelta(days=1),
    )
    importer.import_client(
        settings, NORTHWIND, ["old.csv", "monday.csv"], run_id="r1", kind="daily", cutoff=None, started_at=BASE_TIME
    )
    later = BASE_TIME + timedelta(days=40)
    with settings.store.write() as con, store.transaction(con):
        store.record_waiting(con, "contoso", "half.csv", 10, later, later)
        store.record_ignored(con, "northwind", "monday.csv", 99, later, later, "the name was used before")
        planned = {"name": "old.csv", "sha256": "f0", "received_at": BASE_TIME, "location": "sftp", "path": "/x"}
        store.plan_deletions(con, "northwind", [planned], later)
        store.record_purge(con, "northwind", [("sftp", "/x")], [], ["old.csv"], later)
        store.mark_results(con, "northwind", ["monday.csv"], later)
        store.record_samples(con, "northwind", "digest", later)


def _everything(settings: Settings) -> dict[str, Any]:
    """What users see of the store: status rows, contacts, row errors, runs, deletions, the name rule's names."""
    clients, probe = sorted(CLIENTS), ["monday.csv", "old.csv", "never-seen.csv"]  # the names a sync might list
    with settings.store.read() as con:
        return {
            "files": store.client_files(con, clients),
            "contacts": store.read_contacts(con, NORTHWIND),
            "errors": store.client_errors(con, clients, 100),
            "runs": con.execute("SELECT run_id, state, files_imported, rows_rejected FROM runs").fetchall(),
            "deletions": store.deletion_log(con),
            "known": {
                c: sorted(ledger.known) for c, ledger in store.sync_ledgers(con, dict.fromkeys(clients, probe)).items()
            },
            "results": store.pending_results(con, clients),
            "samples": store.samples_digests(con, clients),
        }


def test_a_duckdb_store_is_copied_whole_verified_and_a_second_copy_is_refused(
    home: Path, postgres: Cluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(load_settings())
    before = _everything(load_settings())
    assert before["known"]["northwind"] == ["monday.csv", "old.csv"] and before["errors"]["northwind"]
    url = create_database(postgres, "moved")

    assert main(["store", "copy", "--to", url]) == 0
    out = capsys.readouterr().out
    assert "contacts_northwind" in out and "counts and checksums verified" in out
    monkeypatch.setenv("SFTP_IMPORT_STORE_URL", url)
    after = load_settings()
    assert after.store.location.startswith("postgresql://")
    assert _everything(after) == before  # the purged old.csv included: the name rule still refuses it

    assert main(["store", "copy", "--to", url]) == 1  # into a store that is not empty: refused, nothing changed
    assert "not empty" in capsys.readouterr().err
    assert _everything(after) == before
    store.close_store(url)
