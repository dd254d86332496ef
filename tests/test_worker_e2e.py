"""End to end on a real Prefect server and a process worker: setup, deploy, `prefect deployment run` a backfill."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.importing import ledger
from tests.sftp_fixtures import SftpTarget

BIN = Path(sys.executable).parent
CSV = (
    b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
    b"ada@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group (so it and its children stop together), output to a log file."""
    handle = log.open("wb")
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def prefect_server(tmp_path: Path, asyncssh_target: SftpTarget) -> Iterator[tuple[str, dict[str, str]]]:
    """`prefect server start` on a free port with its own PREFECT_HOME; yields (api url, env for children)."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    server = _start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "server.log",
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.5)
        yield api, env
    finally:
        _stop(server)


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_backfill_through_a_worker(
    tmp_path: Path, asyncssh_target: SftpTarget, prefect_server: tuple[str, dict[str, str]]
) -> None:
    api, env = prefect_server
    folder = asyncssh_target.client_dir("northwind")
    (folder / "late.csv").write_bytes(CSV)
    stamp = time.time() - 3600
    os.utime(folder / "late.csv", (stamp, stamp))

    python = str(BIN / "python")
    _run([python, "-m", "deployments.setup"], env)
    _run([python, "-m", "deployments.setup"], env)  # idempotent
    prefect_file = tmp_path / "prefect.yaml"
    _run([python, "-m", "deployments.generate", "--output", str(prefect_file)], env)
    _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)], env)
    worker = _start(
        [str(BIN / "prefect"), "worker", "start", "--pool", "sftp-import", "--limit", "2"], env, tmp_path / "worker.log"
    )
    try:
        started = time.monotonic()
        out = _run(
            [
                str(BIN / "prefect"),
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
            if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        assert run["state"]["type"] == "COMPLETED", run["state"].get("message")
        assert run["name"].startswith("backfill-northwind-")
        print(f"\nprefect deployment run -> completed: {elapsed:.1f} s; flow run itself {run['total_run_time']:.1f} s")
    finally:
        _stop(worker)
    assert ledger(asyncssh_target.settings, "northwind")["late.csv"]["status"] == "imported"
