"""Crash consistency: sync, import, backfill and purge SIGKILLed at random points (the whole process
group), then rerun, end exactly as an uninterrupted run (tests/kill_loop.py; `make soak` runs 500+)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tasks import store
from tasks.settings import load_settings
from tests.conftest import REPO
from tests.kill_loop import OPS, DuckdbFile, KillLoop, PostgresDatabase, StoreBackend, kill_loop, run_points
from tests.kill_state import RUN_TOTALS, VOLATILE, differences, end_state, run_problems

POINTS = int(os.environ.get("KILL_LOOP_POINTS", "52"))
SEED = int(os.environ.get("KILL_LOOP_SEED", "1"))


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def store_backend(request: pytest.FixtureRequest) -> StoreBackend:
    """Where the store lives: the DuckDB file of the home, then a database of the tests' PostgreSQL cluster."""
    if request.param == "postgresql":
        return PostgresDatabase(request.getfixturevalue("postgres"), f"killed{os.getpid()}")
    return DuckdbFile()


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, store_backend: StoreBackend) -> Iterator[KillLoop]:
    """The scenario built once: its states, each operation's uninterrupted result and duration."""
    with kill_loop(tmp_path_factory.mktemp("kill-loop"), store_backend) as prepared:
        yield prepared


def test_the_comparison_sees_a_lost_file_and_a_missing_result(loop: KillLoop) -> None:
    loop.restore("imported")
    settings = load_settings()
    found, problems = end_state(settings, loop.sftp_root, VOLATILE)
    assert problems == [] and differences(loop.reference["import"], found) == []
    staged = next(p for p in (settings.home / "staging" / "northwind").iterdir())
    staged.unlink()
    found, problems = end_state(settings, loop.sftp_root, VOLATILE)
    assert problems == [f"northwind/{staged.name}: ledger row imported, staged copy missing"]
    assert differences(loop.reference["import"], found) == [f"staging: missing ['northwind/{staged.name}'], extra []"]
    loop.restore("synced")  # the import not run: contacts, row errors, ledger statistics and runs all differ
    found, _ = end_state(settings, loop.sftp_root, VOLATILE)
    differing = {line.split(":")[0] for line in differences(loop.reference["import"], found)}
    assert {"contacts_northwind", "files", "row_errors", "runs (summed)", "results"} <= differing


def test_a_run_left_running_or_with_wrong_totals_is_a_problem() -> None:
    zero = dict.fromkeys(RUN_TOTALS, 0)
    runs = [{"run_id": "a", "client": "c", "state": "running", **zero}]
    files = [
        {"run_id": "a", "status": "imported", **dict.fromkeys(RUN_TOTALS, 1)},
        {"run_id": "b", "status": "rejected"},
    ]
    found = run_problems(runs, files)
    assert found[0] == "run a of c left running"
    assert found[1].startswith("run a (running) totals {'files_imported': 0") and "'files_imported': 1" in found[1]
    assert found[2:] == ["files of run b without its run row: 1"]


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~70 s on 2 quiet cores; several times that on a machine shared with benchmarks
def test_every_kill_point_ends_as_an_uninterrupted_run(loop: KillLoop) -> None:
    summary = run_points(loop, POINTS, SEED)
    print(summary.line())
    assert [failure.line() for failure in summary.failures] == []
    assert summary.points >= POINTS
    assert all(summary.by_op[op] >= POINTS // len(OPS) // 2 for op in OPS), summary.line()


def _once(loop: KillLoop, op: str, client: str) -> subprocess.Popen[bytes]:
    """One operation on one client in a process of its own (the backfill names the client's staged files)."""
    with load_settings().store.read() as con:
        files = {client: store.staged_files(con, client, None)}
    args = [op, loop.now.isoformat(), client, json.dumps(files)]
    return subprocess.Popen([sys.executable, "-m", "tests.kill_ops", *args], cwd=REPO, env=dict(os.environ))


CONCURRENT = (("import", "northwind"), ("import", "contoso"), ("backfill", "fabrikam"), ("sync", "fabrikam"))


def test_a_sync_imports_a_backfill_and_status_at_once_end_as_one_after_another(loop: KillLoop) -> None:
    loop.restore("synced")
    for op, client in CONCURRENT:
        assert _once(loop, op, client).wait(timeout=300) == 0
    serial, problems = end_state(load_settings(), loop.sftp_root, VOLATILE)
    assert problems == []

    loop.restore("synced")
    status = [sys.executable, "-m", "flows.cli", "status", "--json"]
    running = [_once(loop, op, client) for op, client in CONCURRENT]
    readers = [subprocess.run(status, cwd=REPO, capture_output=True, text=True, timeout=300) for _ in range(3)]
    assert [run.wait(timeout=300) for run in running] == [0] * len(CONCURRENT)  # none failed on a lock
    assert all(reader.returncode == 0 and '"clients"' in reader.stdout for reader in readers), readers[0].stderr
    concurrent, problems = end_state(load_settings(), loop.sftp_root, VOLATILE)
    assert problems == [] and differences(serial, concurrent) == []
