"""The resident Prefect server: a flow command starts it once, the next reuses it; stale pid; stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from deployments import local, server
from tasks.writer_lock import writer_lock
from tests.importing import ledger, stage_bytes

CSV = (
    b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
    b"ada@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\n"
)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(local.BIN / "sftp-import"), *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_resident_server_is_started_once_reused_replaced_when_stale_and_stopped(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # no PREFECT_API_URL
    env["SFTP_IMPORT_PREFECT_PORT"] = str(server.free_port())
    try:
        assert _cli(env, "server", "status").returncode == 3

        from tasks.settings import load_settings

        stage_bytes(load_settings(), "northwind", "monday.csv", CSV)
        first = _cli(env, "import", "--client", "northwind", "--now")  # the server is down: the command starts it
        assert first.returncode == 0, first.stderr
        assert "started the resident Prefect server" in first.stderr and "monday.csv: imported" in first.stdout
        running = server.running(home)
        assert running is not None and server.healthy(running.url)

        stage_bytes(load_settings(), "northwind", "tuesday.csv", CSV.replace(b"ada@", b"bob@"))
        second = _cli(env, "import", "--client", "northwind", "--now")  # reused: no second server
        assert second.returncode == 0, second.stderr
        assert "started" not in second.stderr and "tuesday.csv: imported" in second.stdout
        assert server.running(home) == running
        again = _cli(env, "server", "start")
        assert "already running" in again.stdout and str(running.pid) in again.stdout
        flow_runs = httpx.post(f"{running.url}/flow_runs/filter", json={}, timeout=10).json()
        assert len([run for run in flow_runs if run["name"].startswith("import-northwind-")]) == 2  # seen in its UI

        os.killpg(running.pid, signal.SIGKILL)  # a kill -9 leaves a stale record behind
        while server.running(home) is not None:
            time.sleep(0.1)
        stale = _cli(env, "server", "status")
        assert stale.returncode == 3 and f"stale record: pid {running.pid} is gone" in stale.stdout
        replaced = _cli(env, "server", "start")
        assert replaced.returncode == 0 and "Prefect server started" in replaced.stdout
        renewed = server.running(home)
        assert renewed is not None and renewed.pid != running.pid and server.healthy(renewed.url)

        stopped = _cli(env, "server", "stop")
        assert f"stopped (pid {renewed.pid})" in stopped.stdout
        assert server.running(home) is None and not server.healthy(renewed.url)
        assert "no Prefect server running" in _cli(env, "server", "status").stdout
    finally:
        server.stop(home)


def _frozen_mid_run(run: subprocess.Popen[str], store: Path) -> None:
    """SIGSTOP the import's process at a moment it holds the store (its run under way, not ended): the
    server then restarts under a run in its middle, however fast the machine."""
    lock = writer_lock(store)
    while True:
        assert run.poll() is None, run.communicate()
        holder = lock.holder()
        if holder is not None and holder.pid == run.pid:
            os.kill(run.pid, signal.SIGSTOP)
            holder = lock.holder()  # frozen now: it still holds the store, or it let go just before
            if holder is not None and holder.pid == run.pid:
                return
            os.kill(run.pid, signal.SIGCONT)
        time.sleep(0.01)


@pytest.mark.slow
def test_a_run_goes_on_when_the_server_restarts_in_its_middle_and_imports_each_file_once(home: Path) -> None:
    from tasks.settings import load_settings

    files = 8
    rows = b"".join(f"p{i}@example.com,P,,{i:03d},01/02/2026,{i}.5,SMB\n".encode() for i in range(3000))
    for n in range(files):
        stage_bytes(load_settings(), "northwind", f"{n:02d}.csv", CSV.replace(b"ada@", f"a{n}@".encode()) + rows)
    port = server.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "SFTP_IMPORT_PREFECT_PORT": str(port)
    }
    server.start(home, port=port, ui=False)
    try:
        command = [str(local.BIN / "sftp-import"), "import", "--client", "northwind", "--now"]
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _frozen_mid_run(run, load_settings().db_path)
        try:
            server.stop(home)
            restarted, _ = server.start(home, port=port, ui=False)
        finally:
            os.kill(run.pid, signal.SIGCONT)
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err  # the run resumed against the restarted server
        assert f"files_imported {files}," in out
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "files_imported 0," in again.stdout  # nothing left: each file once
        flow_runs = httpx.post(f"{restarted.url}/flow_runs/filter", json={}, timeout=10).json()
        assert sorted(r["state"]["type"] for r in flow_runs if r["name"].startswith("import-northwind")) == [
            "COMPLETED",
            "COMPLETED",
        ]
    finally:
        server.stop(home)
    statuses = {row["status"] for row in ledger(load_settings(), "northwind").values()}
    assert statuses == {"imported"} and len(ledger(load_settings(), "northwind")) == files
