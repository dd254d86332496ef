"""A real local Prefect server and process workers as child processes, for the end-to-end test and
the peak benchmark: `prefect server start` on a free port with its own PREFECT_HOME."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from deployments.generate import POOL, REPO

BIN = Path(sys.executable).parent
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")  # flow run state types that end a run
# A writer denied the store's limit sleeps on the server's Retry-After, by default up to 30 s while
# the store idles; capped at 0.5 s the next writer gets in almost as soon as the slot is free.
SLOT_WAIT = {"PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "0.5"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group (so it and its children stop together), output to a log file."""
    handle = log.open("wb")
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, SIGKILL after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def prefect_server(home: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """A Prefect server with its home (and log) in `home`; yields (api url, env for its clients)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    child_env = {k: v for k, v in (env or dict(os.environ)).items() if not k.startswith("PREFECT_")}
    child_env |= {
        "PREFECT_HOME": str(home / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "SFTP_IMPORT_CODE_DIR": str(REPO),  # the pull step of prefect.yaml runs the flows from here
    } | SLOT_WAIT
    log = home / "server.log"
    server = start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], child_env, log
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield api, child_env
    finally:
        stop(server)


def start_worker(env: dict[str, str], log: Path, limit: int = 2) -> subprocess.Popen[bytes]:
    """A process worker on the platform's pool running at most `limit` flow runs at a time."""
    return start([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--limit", str(limit)], env, log)


def run_checked(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """Run a command from the repo root; its stdout, or RuntimeError with its output."""
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout
