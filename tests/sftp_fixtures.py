"""Real SFTP servers for the tests: the embedded asyncssh server and OpenSSH's sshd on a high port.

Both verify host keys exactly as production does (a generated host key, a known_hosts file naming
it). `asyncssh_target` / `openssh_target` point the platform's environment at a fresh client root
and return the settings; tests create client folders under `target.local_root`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.openssh import SshdFailed, running_sshd, sshd_binary
from demo.sftp_server import ServerInfo, running_server
from tasks.settings import Settings, load_settings


@dataclass(frozen=True)
class SftpTarget:
    """A server, the local folder it serves as the SFTP root, and settings pointing at it."""

    server: ServerInfo
    local_root: Path
    remote_root: str

    @property
    def settings(self) -> Settings:
        return load_settings()

    def client_dir(self, name: str) -> Path:
        """A client's folder on the server (created)."""
        folder = self.local_root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder


UPLOADING = 600  # a settle time no pass of a test outlasts: a file written now is still being uploaded


def point_env_at(monkeypatch: pytest.MonkeyPatch, server: ServerInfo, remote_root: str, settle: int = 1) -> None:
    """Set the SFTP_IMPORT_SFTP_* variables (key login, known_hosts) and a short settle time."""
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SFTP_IMPORT_SFTP_PASSWORD", raising=False)
    monkeypatch.setenv("SFTP_IMPORT_SFTP_ROOT", remote_root)
    set_settle(monkeypatch, settle)


def set_settle(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """How long a file must stay unchanged before a sync takes it (UPLOADING: a flow test's fresh file waits
    whatever the machine's speed, where the flow reads the real clock)."""
    monkeypatch.setenv("SFTP_IMPORT_SETTLE_SECONDS", str(seconds))


@pytest.fixture
def asyncssh_server(tmp_path: Path) -> Iterator[ServerInfo]:
    """The embedded asyncssh server, chrooted to tmp_path/sftp-root (starts in milliseconds)."""
    root = tmp_path / "sftp-root"
    root.mkdir()
    with running_server(root, tmp_path / "sftp-state") as server:
        yield server


@pytest.fixture
def asyncssh_target(home: Path, asyncssh_server: ServerInfo, monkeypatch: pytest.MonkeyPatch) -> SftpTarget:
    """The platform's environment pointed at the asyncssh server (root "/" = its chroot)."""
    point_env_at(monkeypatch, asyncssh_server, "/")
    return SftpTarget(asyncssh_server, asyncssh_server.root, "/")


@pytest.fixture(scope="session")
def openssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """OpenSSH's sshd from its own config on a high port (own host key, internal-sftp, key login only).

    Skipped when sshd is missing, unless SFTP_IMPORT_REQUIRE_OPENSSH is set (CI): then it fails."""
    sshd = sshd_binary()
    if sshd is None:
        if os.environ.get("SFTP_IMPORT_REQUIRE_OPENSSH"):
            pytest.fail("sshd is not installed but SFTP_IMPORT_REQUIRE_OPENSSH is set (CI must run OpenSSH tests)")
        pytest.skip("OpenSSH sshd is not installed (set SFTP_IMPORT_REQUIRE_OPENSSH=1 to make this an error)")
    try:
        with running_sshd(sshd, tmp_path_factory.mktemp("sshd"), tmp_path_factory.mktemp("openssh-root")) as server:
            yield server
    except SshdFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture
def openssh_target(
    home: Path, openssh_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SftpTarget:
    """The platform pointed at sshd; the root is an absolute path, fresh for each test."""
    root = openssh_server.root / tmp_path.name
    root.mkdir()
    point_env_at(monkeypatch, openssh_server, str(root))
    return SftpTarget(openssh_server, root, str(root))
