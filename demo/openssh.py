"""OpenSSH's sshd from its own config on a high port: own host key, internal-sftp, key login only.

The end-to-end tests (tests/sftp_fixtures.py) and the sync benchmark (bench/bench_sync.py) serve a
folder with it; host keys are checked exactly as production does (a known_hosts file naming it)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from demo.sftp_server import ServerInfo, prepare_keys, write_known_hosts
from deployments.server import free_port

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


class SshdFailed(RuntimeError):
    """sshd exited or did not listen in time."""


def sshd_binary() -> str | None:
    """The sshd program, None when OpenSSH's server is not installed."""
    found = shutil.which("sshd")
    return found or next((c for c in SSHD_CANDIDATES if os.access(c, os.X_OK)), None)


def _config(state: Path, port: int, host_key: Path, authorized: Path) -> Path:
    """sshd_config for this user on 127.0.0.1:port."""
    config = state / "sshd_config"
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {state / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        f"AllowUsers {getpass.getuser()}",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp",
        "",
    ]
    config.write_text("\n".join(lines))
    return config


@contextmanager
def running_sshd(sshd: str, state: Path, root: Path) -> Iterator[ServerInfo]:
    """sshd running until the block ends, serving `root` (paths on it are absolute); keys and log in `state`."""
    host_key, client_key = prepare_keys(state)
    authorized = state / "authorized_keys"
    authorized.write_text(Path(str(client_key) + ".pub").read_text())
    port = free_port()
    config = _config(state, port, host_key, authorized)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    with (state / "sshd.log").open("w") as log:
        process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_listening(process, port, state / "sshd.log")
            known_hosts = state / "known_hosts"
            write_known_hosts(known_hosts, "127.0.0.1", port, host_key)
            yield ServerInfo("127.0.0.1", port, getpass.getuser(), None, client_key, known_hosts, host_key, root)
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 15) -> None:
    """Return once sshd accepts connections; SshdFailed if it exits or takes longer than `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise SshdFailed(f"sshd exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SshdFailed(f"sshd did not start listening within {seconds:.0f} s") from None
            time.sleep(0.05)
