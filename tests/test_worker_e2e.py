"""End to end on a real Prefect server and a process worker: setup, deploy, `prefect deployment run` a backfill."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deployments import local
from tests.importing import ledger
from tests.sftp_fixtures import SftpTarget

CSV = (
    b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
    b"ada@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\n"
)


@pytest.fixture
def prefect_server(tmp_path: Path, asyncssh_target: SftpTarget) -> Iterator[tuple[str, dict[str, str]]]:
    """`prefect server start` on a free port with its own PREFECT_HOME; yields (api url, env for children)."""
    with local.prefect_server(tmp_path) as server:
        yield server


def _run(args: list[str], env: dict[str, str]) -> str:
    return local.run_checked(args, env, timeout=300)


@pytest.mark.slow
def test_backfill_through_a_worker(
    tmp_path: Path, asyncssh_target: SftpTarget, prefect_server: tuple[str, dict[str, str]]
) -> None:
    api, env = prefect_server
    folder = asyncssh_target.client_dir("northwind")
    (folder / "late.csv").write_bytes(CSV)
    stamp = time.time() - 3600
    os.utime(folder / "late.csv", (stamp, stamp))

    python = str(local.BIN / "python")
    _run([python, "-m", "deployments.setup"], env)
    _run([python, "-m", "deployments.setup"], env)  # idempotent
    prefect_file = tmp_path / "prefect.yaml"
    _run([python, "-m", "deployments.generate", "--output", str(prefect_file)], env)
    _run([str(local.BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)], env)
    worker = local.start_worker(env, tmp_path / "worker.log")
    try:
        started = time.monotonic()
        out = _run(
            [
                str(local.BIN / "prefect"),
                "deployment",
                "run",
                "backfill/backfill",
                "--params",
                json.dumps({"client": "northwind", "files": ["late.csv"]}),
            ],
            env,
        )
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", out)
        assert run_id, out
        deadline = time.monotonic() + 240
        while True:
            run = httpx.get(f"{api}/flow_runs/{run_id.group(1)}", timeout=10).json()
            if run["state"]["type"] in local.TERMINAL:
                break
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        assert run["state"]["type"] == "COMPLETED", run["state"].get("message")
        assert run["name"].startswith("backfill-northwind-")
        assert {"backfill", "kind:backfill", "client:northwind"} <= set(run["tags"])  # the run tagged itself
        print(f"\nprefect deployment run -> completed: {elapsed:.1f} s; flow run itself {run['total_run_time']:.1f} s")
    finally:
        local.stop(worker)
    assert ledger(asyncssh_target.settings, "northwind")["late.csv"]["status"] == "imported"
