"""A real local Prefect server and process workers as child processes, for the end-to-end test and
the peak benchmark: a resident server (`deployments.server`) of its own home on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deployments import server
from deployments.generate import POOL, REPO

BIN = server.BIN
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")  # flow run state types that end a run


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
def prefect_server(
    home: Path, env: dict[str, str] | None = None, database_url: str | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """The resident server of `home` on a free port (its state in `database_url`, PostgreSQL, when
    given), stopped after; yields (api url, env for its clients)."""
    running, _ = server.start(home, port=server.free_port(), ui=False, database_url=database_url)
    child_env = {k: v for k, v in (env or dict(os.environ)).items() if not k.startswith("PREFECT_")}
    child_env |= server.client_env(home, running.url) | {"SFTP_IMPORT_CODE_DIR": str(REPO)}  # prefect.yaml's pull step
    try:
        yield running.url, child_env
    finally:
        server.stop(home)


def start_worker(env: dict[str, str], log: Path, limit: int = 2, name: str | None = None) -> subprocess.Popen[bytes]:
    """A process worker on the platform's pool running at most `limit` flow runs at a time."""
    named = ["--name", name] if name else []
    return start([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--limit", str(limit), *named], env, log)


def run_checked(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """Run a command from the repo root; its stdout, or RuntimeError with its output."""
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout
