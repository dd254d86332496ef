"""The resident local Prefect server: one per SFTP_IMPORT_HOME, started once, detached, left running.

Every command that runs a flow talks to `PREFECT_API_URL` when it is set, else to this server,
starting it when it is not running. Its home (database, log, pid) is `<home>/prefect`; what runs
is recorded in `server.json` there, so a later command, `sftp-import server status` and the
`make ui` link find it. A record whose process is gone or is not a Prefect server (a `kill -9`,
a reboot) is stale: it is reported as such and replaced by the next start.

Nothing here imports prefect: the server is a child process (`prefect server start`), and its
health is asked over HTTP with the standard library, so the commands stay fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
DEFAULT_PORT = 4200
START_SECONDS = 180.0  # a busy 2-core machine can take a minute or more to bring the server up
STOP_SECONDS = 30.0  # SIGTERM, then SIGKILL after this long
API_ANSWER_SECONDS = 10.0  # a busy server's health check; a server that is down refuses at once
# settings of the server and of every process that uses it (telemetry off: it errs at start-up here)
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


class ServerError(RuntimeError):
    """The resident server could not be started or reached; the message names the log to read."""


@dataclass(frozen=True)
class Server:
    """A resident server as recorded in its `server.json`."""

    pid: int
    url: str  # the API, e.g. http://127.0.0.1:4200/api
    log: str
    started_at: str
    database: str = "sqlite"  # where the server keeps its state: sqlite (under the home) or postgresql://host:port/db

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")


def prefect_home(home: Path) -> Path:
    """The server's folder under the platform's home: its PREFECT_HOME, database, log and record."""
    return home / "prefect"


def client_env(home: Path, url: str) -> dict[str, str]:
    """The environment a process needs to use the server at `url` (and keep Prefect's files under `home`)."""
    return {"PREFECT_API_URL": url, "PREFECT_HOME": str(prefect_home(home))} | QUIET


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when the API at `url` answers its health check."""
    import urllib.request  # here, not at import time: `status` and `--help` load this module (~30 ms)

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (OSError, ValueError):  # urllib's URLError is an OSError
        return False


def _is_prefect_server(pid: int) -> bool:
    """The process `pid` lives and is a `prefect server start` (not another process that got its pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"server" in command and any(part.endswith(b"prefect") for part in command)


def _record(home: Path) -> Path:
    return prefect_home(home) / "server.json"


def recorded(home: Path) -> Server | None:
    """The server `server.json` names, alive or not; None when there is no readable record."""
    try:
        return Server(**json.loads(_record(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running(home: Path) -> Server | None:
    """The home's server when its process is alive and is a Prefect server (it may still be starting)."""
    server = recorded(home)
    return server if server is not None and _is_prefect_server(server.pid) else None


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A TCP port free on `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _choose_port(host: str, port: int | None) -> int:
    """The port asked for; else 4200, or any free one when 4200 is taken (by another home's server)."""
    if port is not None:
        return port
    return DEFAULT_PORT if _port_free(host, DEFAULT_PORT) else free_port(host)


def _wait_healthy(server: Server, process: subprocess.Popen[bytes] | None, seconds: float) -> None:
    """Until the server answers; ServerError (naming the log) when it exits or does not answer in time."""
    deadline = time.monotonic() + seconds
    while not healthy(server.url):
        exited = process.poll() is not None if process is not None else not _is_prefect_server(server.pid)
        if exited or time.monotonic() > deadline:
            why = "exited" if exited else f"did not answer within {seconds:.0f} s"
            tail = Path(server.log).read_text(errors="replace")[-2000:] if Path(server.log).exists() else ""
            raise ServerError(f"the Prefect server {why}; its log is {server.log}:\n{tail}")
        time.sleep(0.25)


def database_env(url: str | None) -> tuple[dict[str, str], str]:
    """The server's environment for its database, and the database to show: SQLite under the home when
    `url` is None, else PostgreSQL through asyncpg (what Prefect asks for when several workers share it)."""
    if url is None:
        return {}, "sqlite"
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ServerError(f"SFTP_IMPORT_PREFECT_DATABASE_URL must be a postgresql:// URL, not {scheme}://")
    shown = f"postgresql://{rest.rsplit('@', 1)[-1]}"  # without user and password
    return {"PREFECT_SERVER_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{rest}"}, shown


def start(
    home: Path,
    *,
    port: int | None = None,
    wait_seconds: float = START_SECONDS,
    ui: bool = True,
    database_url: str | None = None,
) -> tuple[Server, bool]:
    """The home's server, started detached when it is not running; (server, True when started now).

    Its state goes to `database_url` (PostgreSQL) when given, else to SQLite under the home. Starts
    are serialised by a file lock, so two commands at once start one server."""
    folder = prefect_home(home)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "server.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        current = running(home)
        if current is not None:
            _wait_healthy(current, None, wait_seconds)
            return current, False
        chosen = _choose_port(HOST, port)
        url = f"http://{HOST}:{chosen}/api"
        log = folder / "server.log"
        database, shown = database_env(database_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | client_env(home, url) | database
        env["PREFECT_UI_ENABLED"] = "true" if ui else "false"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", HOST, "--port", str(chosen)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # detached: it outlives this command, and stops with its group
            )
        server = Server(process.pid, url, str(log), datetime.now(UTC).isoformat(timespec="seconds"), shown)
        _record(home).write_text(json.dumps(asdict(server)))
        try:
            _wait_healthy(server, process, wait_seconds)
        except ServerError:
            _terminate(process.pid)
            _record(home).unlink(missing_ok=True)
            raise
        return server, True


def _terminate(pid: int) -> None:
    """SIGTERM the server's process group, SIGKILL it after STOP_SECONDS."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_SECONDS
    while _is_prefect_server(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
        _reap(pid)
    if _is_prefect_server(pid):
        os.killpg(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    """Collect the exit of a server this process started (else it lingers as a zombie)."""
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)


def stop(home: Path) -> Server | None:
    """Stop the home's server; the server stopped, or None when none was running (a stale record goes too)."""
    server = running(home)
    if server is not None:
        _terminate(server.pid)
    _record(home).unlink(missing_ok=True)
    return server


@contextmanager
def watched_here() -> Iterator[None]:
    """For flow runs this process runs itself and waits for: no heartbeat thread. Heartbeats only feed
    an automation that marks a deployment's silent runs crashed; here the caller sees the end itself,
    and joining the heartbeat thread at the end of a run costs up to a second per command."""
    from prefect.settings import temporary_settings

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


def _api_url() -> str | None:
    """PREFECT_API_URL, from the environment or (prefect already imported) from Prefect's settings."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    return None


def use_server(home: Path, port: int | None = None, database_url: str | None = None) -> Server | None:
    """Point this process's Prefect at its API before prefect is imported: PREFECT_API_URL when set
    (ServerError when it does not answer: no run is started, so nothing is half done), else the home's
    resident server, started when it is not running and left running (the next command is fast, and the
    UI shows every run). Returns the server when it was started now."""
    url = _api_url()
    if url is not None:
        if not healthy(url.rstrip("/"), timeout=API_ANSWER_SECONDS):
            raise ServerError(
                f"the Prefect API at {url} (PREFECT_API_URL) does not answer, so nothing was run: start that "
                "server, or unset PREFECT_API_URL to use this home's resident server (`sftp-import server start`)"
            )
        return None
    server, started = start(home, port=port, database_url=database_url)
    os.environ.update(client_env(home, server.url))
    return server if started else None
