"""Faults a real SFTP server can be made to show: the embedded asyncssh server with switchable
faults, and OpenSSH's sshd sessions stopped or killed with signals.

`Faults` is shared between a test and the server's thread: operations on paths containing
`stall_in` (reads only from `stall_from` bytes on) block until `released` is set, like a server that
stops answering; `stalled` tells the test that one did (with `stall_once`, only the first does).
`on_first_read` runs once, before the first read from `change_from` bytes on of a path containing
`change_in` (a client rewriting a file while it is copied).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from demo.sftp_server import ChrootedSFTPServer, ServerInfo, running_server
from tests.sftp_fixtures import SftpTarget, point_env_at


@dataclass
class Faults:
    """What the faulty server does, switched by the test."""

    stall_in: str | None = None
    stall_from: int = 0
    stall_once: bool = False  # only the first operation that matches stalls (a retry gets through)
    released: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    change_in: str | None = None
    change_from: int = 0
    on_first_read: Callable[[], None] | None = None

    async def maybe_stall(self, path: bytes | str, offset: int = 0) -> None:
        """Block (without blocking the server's loop) while the path is to stall and not released."""
        text = os.fsdecode(path)
        if self.stall_in is not None and self.stall_in in text and offset >= self.stall_from:
            if self.stall_once:
                self.stall_in = None
            self.stalled.set()
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait)

    def maybe_change(self, path: str, offset: int) -> None:
        """Run `on_first_read` (once) when this read is the one it waits for."""
        if self.change_in is None or self.change_in not in path or offset < self.change_from:
            return
        if self.on_first_read is not None:
            change, self.on_first_read = self.on_first_read, None
            change()


def faulty_server_class(faults: Faults) -> type[ChrootedSFTPServer]:
    """A server class whose listings, stats, opens and reads obey `faults`."""

    class FaultyServer(ChrootedSFTPServer):
        async def scandir(self, path: bytes) -> AsyncIterator[Any]:  # type: ignore[override]
            await faults.maybe_stall(path)
            async for name in super().scandir(path):
                yield name

        async def lstat(self, path: bytes) -> Any:
            await faults.maybe_stall(path)
            return super().lstat(path)

        async def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
            await faults.maybe_stall(path)
            return super().open(path, pflags, attrs)

        async def read(self, file_obj: Any, offset: int, size: int) -> bytes:
            name = str(getattr(file_obj, "name", ""))
            await faults.maybe_stall(name, offset)
            faults.maybe_change(name, offset)
            return await super().read(file_obj, offset, size)

    return FaultyServer


@pytest.fixture
def faults() -> Iterator[Faults]:
    switched = Faults()
    yield switched
    switched.released.set()  # a stalled handler ends with the test


@pytest.fixture
def faulty_target(home: Path, tmp_path: Path, faults: Faults, monkeypatch: pytest.MonkeyPatch) -> Iterator[SftpTarget]:
    """The platform pointed at an embedded server with `faults`, a 1-second operation timeout."""
    root = tmp_path / "sftp-root"
    root.mkdir()
    with running_server(root, tmp_path / "sftp-state", server_class=faulty_server_class(faults)) as server:
        point_env_at(monkeypatch, server, "/")
        monkeypatch.setenv("SFTP_IMPORT_SFTP_TIMEOUT_SECONDS", "1")
        yield SftpTarget(server, server.root, "/")
        faults.released.set()  # before the server stops: it waits for its handlers


def sshd_sessions(server: ServerInfo) -> list[int]:
    """The pids of sshd's per-connection processes (every descendant of the listening sshd)."""
    main = int((server.host_key_file.parent / "sshd.pid").read_text())
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [main]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    """Send `sig` to each process still there."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def unread_bytes(port: int) -> int:
    """Bytes the server side of connections to `port` has received but not read (its Recv-Q)."""
    out = subprocess.run(
        ["ss", "-tnH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip())
