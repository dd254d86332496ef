"""Several machines on one (deployments/cluster.py): a Prefect server on PostgreSQL, a PostgreSQL store,
staging shared by its URL and two process workers as two machines with homes of their own. Then
issue 11's kills mid-import: a whole machine (the other one's rerun completes the work), and the
store's PostgreSQL server itself (the import task's retry completes the run). Each kill lands inside
the second file's transaction whatever the machine's speed (the test holds that file's ledger row).
Each time the contacts and the ledger equal an uninterrupted run's, each file imported once, no
client lock left held.

The store's PostgreSQL is a cluster of the test's own (durable, as production's), so that killing it
leaves the Prefect server's database (in the session's cluster) alone."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from deployments import local
from deployments.cluster import deploy, machine_env, machines_of, run_deployment, wait_for_runs
from deployments.postgres import Cluster, create_database, postgres_cluster, restart_cluster, stop_cluster
from deployments.setup import SILENT_BEATS
from schemas.samples import sample_records, write_rows
from tasks import importer
from tasks.settings import Settings, load_settings
from tasks.store import close_store
from tasks.store.ledger import IMPORT_STATS
from tests.importing import CLIENTS, contacts, ledger, stage_bytes
from tests.machines import kill_machine
from tests.sftp_fixtures import SftpTarget

FILES, ROWS = 12, 1000  # per client: the kill lands inside the second file's transaction (_held_at_second_file)
MACHINES = ("machine-1", "machine-2")
BOUND_SECONDS = 240.0  # a generous bound on any one wait (a flow run on a busy 2-core machine)
RETRY_STATES = {"AwaitingRetry", "Retrying"}  # a task run's state names between a failed attempt and the next
HEARTBEAT_SECONDS = 30  # Prefect's least: the killed machine's run is marked crashed SILENT_BEATS of them later


@dataclass
class Platform:
    api: str
    workers: dict[str, subprocess.Popen[bytes]]
    store_cluster: Cluster
    sftp_root: Path


@pytest.fixture
def platform(
    tmp_path: Path, postgres: Cluster, asyncssh_target: SftpTarget, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    """The store's own PostgreSQL, the Prefect server on the session's, the deployments and two machines."""
    with postgres_cluster() as store_cluster:  # a temp folder the postgres user reaches (pytest's is root's only)
        store_url = create_database(store_cluster, "store")
        monkeypatch.setenv("SFTP_IMPORT_STORE_URL", store_url)
        monkeypatch.setenv("SFTP_IMPORT_STAGING", f"file://{tmp_path / 'staging'}")
        prefect_db = create_database(postgres, f"prefect_cluster_{os.getpid()}")
        workers: dict[str, subprocess.Popen[bytes]] = {}
        with local.prefect_server(tmp_path / "server", database_url=prefect_db) as (api, shared):
            shared |= {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}
            try:
                deploy(shared, tmp_path)
                for name in MACHINES:
                    env = machine_env(shared, tmp_path / name)
                    workers[name] = local.start_worker(env, tmp_path / name / "worker.log", name=name)
                yield Platform(api, workers, store_cluster, asyncssh_target.local_root)
            finally:
                for worker in workers.values():
                    local.stop(worker)
                close_store(store_url)


def _upload(sftp_root: Path, client: str) -> None:
    """FILES uploads, each half new contacts and half the previous file's (changed), plus one contact
    every file changes: the result depends on every file being merged once, in order."""
    contract = CLIENTS[client]
    template, email = sample_records(contract)[0], contract.email_field.id
    text = next(field.id for field in contract.fields if field.type == "string" and field.id != email)
    folder = sftp_root / contract.directory
    stamp = time.time() - 3600  # settled long ago
    for n in range(FILES):
        first = n * ROWS // 2
        rows = [template | {email: f"p{first + i}@example.com", text: f"F{n}"} for i in range(ROWS)]
        path = folder / f"{n:02d}.csv"
        path.write_bytes(write_rows(contract, [*rows, template | {email: "all@example.com", text: f"F{n}"}], "csv"))
        os.utime(path, (stamp, stamp))


def _query(settings: Settings, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with settings.store.read() as con:
        return [tuple(row) for row in con.execute(sql, params).fetchall()]


def _imported(settings: Settings, client: str) -> int:
    return int(_query(settings, "SELECT count(*) FROM files WHERE client = ? AND status = 'imported'", [client])[0][0])


class _HeldLedgerRow:
    """The test's own transaction holding the ledger row of a client's second file (FOR UPDATE)."""

    def __init__(self, con: psycopg.Connection[tuple[Any, ...]]) -> None:
        self.con = con

    def wait_blocked(self) -> None:
        """Until a store connection waits for the held row: the import committed the first file and stands
        inside the second's transaction, so what follows (a kill) lands mid-import whatever the machine's speed."""
        deadline = time.monotonic() + BOUND_SECONDS
        sql = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()"
        while self.con.execute(sql).fetchone() == (0,):
            assert time.monotonic() < deadline, "the import never reached its second file"
            time.sleep(0.05)


@contextlib.contextmanager
def _held_at_second_file(settings: Settings, client: str) -> Iterator[_HeldLedgerRow]:
    """Stop the client's import at its second file's ledger update until the block ends (or the server dies)."""
    con = psycopg.connect(settings.store_url)
    try:
        row = con.execute("SELECT 1 FROM files WHERE client = %s AND name = '01.csv' FOR UPDATE", [client]).fetchone()
        assert row == (1,)
        yield _HeldLedgerRow(con)
    finally:
        with contextlib.suppress(psycopg.OperationalError):  # the store's server was killed meanwhile
            con.close()


def _import(api: str, client: str) -> str:
    return run_deployment(api, "daily-import/daily-import", {"client": client, "now": True})


def _import_task(api: str, flow_run: str, states: set[str]) -> dict[str, Any]:
    """The flow run's import task once its state's name or type is one of `states`."""
    deadline = time.monotonic() + BOUND_SECONDS
    while True:
        body = {"flow_runs": {"id": {"any_": [flow_run]}}}
        tasks = httpx.post(f"{api}/task_runs/filter", json=body, timeout=30).raise_for_status().json()
        found = [
            t for t in tasks if t["name"].startswith("import-") and {t["state"]["name"], t["state"]["type"]} & states
        ]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, f"the import task of {flow_run} never reached {sorted(states)}"
        time.sleep(0.25)


def _completed(api: str, run_id: str) -> None:
    run = wait_for_runs(api, [run_id], BOUND_SECONDS)[run_id]
    assert run["state"]["type"] == "COMPLETED", run["state"].get("message")


def _uninterrupted(tmp_path: Path, postgres: Cluster, settings: Settings, sftp_root: Path, client: str) -> Settings:
    """The client's files, received in the same order, imported in one uninterrupted run into a store of their own."""
    url = create_database(postgres, f"reference_{client}_{os.getpid()}")
    reference = replace(settings, store_url=url, staging_url=str(tmp_path / f"reference-{client}"))
    contract = CLIENTS[client]
    for name, row in ledger(settings, client).items():
        stage_bytes(reference, client, name, (sftp_root / contract.directory / name).read_bytes(), row["received_at"])
    names = list(ledger(reference, client))
    importer.import_client(
        reference, contract, names, run_id="reference", kind="daily", cutoff=None, started_at=datetime.now(UTC)
    )
    return reference


def _same_as_uninterrupted(settings: Settings, reference: Settings, client: str) -> None:
    def figures(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
        return {name: (row["status"], *(row[key] for key in IMPORT_STATS)) for name, row in rows.items()}

    files = figures(ledger(settings, client))
    assert {status for status, *_ in files.values()} == {"imported"}
    assert files == figures(ledger(reference, client))
    assert contacts(settings, CLIENTS[client]) == contacts(reference, CLIENTS[client])
    close_store(reference.store_url)


def _runs(settings: Settings, client: str) -> list[tuple[str, int]]:
    """The client's runs as (state, files imported), each checked against the ledger rows it closed."""
    runs = _query(settings, "SELECT run_id, state, files_imported FROM runs WHERE client = ? ORDER BY state", [client])
    for run_id, _, files in runs:
        assert files == _query(settings, "SELECT count(*) FROM files WHERE run_id = ?", [run_id])[0][0]
    return [(state, files) for _, state, files in runs]


@pytest.mark.slow
def test_two_machines_survive_a_killed_machine_and_a_killed_store_server(
    tmp_path: Path, postgres: Cluster, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    for contract in CLIENTS.values():
        (platform.sftp_root / contract.directory).mkdir()
    for client in ("northwind", "contoso"):
        _upload(platform.sftp_root, client)
    _completed(platform.api, run_deployment(platform.api, "hourly-sync/hourly-sync"))
    assert [_imported(settings, c) for c in ("northwind", "contoso")] == [0, 0]

    # (a) the machine running northwind's import dies mid-import; the other machine's rerun completes it
    with _held_at_second_file(settings, "northwind") as held:
        killed_run = _import(platform.api, "northwind")
        machine = machines_of(platform.api, [killed_run])[killed_run]
        held.wait_blocked()
        kill_machine(platform.workers[machine])
        killed = time.monotonic()
    with settings.store.write(client="northwind"):
        freed = time.monotonic() - killed
    at_kill = _imported(settings, "northwind")
    assert at_kill == 1  # the first file's commit kept, the second's transaction lost with the machine
    rerun = _import(platform.api, "northwind")
    _completed(platform.api, rerun)
    (survivor,) = set(MACHINES) - {machine}
    assert machines_of(platform.api, [rerun]) == {rerun: survivor}
    assert _runs(settings, "northwind") == [("completed", FILES - at_kill), ("crashed", at_kill)]

    # (b) the store's PostgreSQL is killed mid-import: the lost connection is transient, so the import task
    # waits to retry; the server restarted meanwhile, the retry completes the import in the same run
    with _held_at_second_file(settings, "contoso") as held:
        run = _import(platform.api, "contoso")
        held.wait_blocked()
        stop_cluster(platform.store_cluster, mode="immediate")
        down = time.monotonic()
    assert _import_task(platform.api, run, RETRY_STATES | set(local.TERMINAL))["state"]["name"] in RETRY_STATES
    restart_cluster(platform.store_cluster)
    restarted = time.monotonic() - down
    _completed(platform.api, run)
    assert _import_task(platform.api, run, set(local.TERMINAL))["run_count"] == 2  # the attempt cut off, the retry
    assert _runs(settings, "contoso") == [("completed", FILES)]  # one run: its retry counts each file once

    for client in ("northwind", "contoso"):
        reference = _uninterrupted(tmp_path, postgres, settings, platform.sftp_root, client)
        _same_as_uninterrupted(settings, reference, client)
    assert _query(settings, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", [])[0][0] == 0
    # the killed machine's run: silent since the kill, the setup's automation marks it crashed
    silent = SILENT_BEATS * HEARTBEAT_SECONDS
    crashed = wait_for_runs(platform.api, [killed_run], silent + BOUND_SECONDS)[killed_run]["state"]
    assert crashed["type"] == "CRASHED" and crashed["message"].startswith(f"No heartbeat for {silent} s:")
    marked = time.monotonic() - killed
    with capsys.disabled():
        print(
            f"\nmachine {machine} killed with {at_kill}/{FILES} files imported: northwind's lock free "
            f"{freed * 1000:.0f} ms later, {survivor}'s rerun imported the rest, Prefect marked the killed run "
            f"crashed {marked:.0f} s after the kill; PostgreSQL killed inside contoso's second file, down "
            f"{restarted:.1f} s, the import task's retry imported the rest"
        )
