"""An embedded SFTP server (asyncssh, chrooted to one folder) for the demo and the tests.

It is a real SSH server on 127.0.0.1: a host key and a client key are generated at run time into a
state folder (never committed), and a known_hosts file naming the server's key is written next to
them, so the platform verifies the host key exactly as in production.

In-process, for tests and the demo:

    with running_server(root, state_dir) as server:
        os.environ.update(server.env())

As a separate process, so a test can kill it mid-copy (and restart it with the same keys):

    python -m demo.sftp_server --root R --state-dir D --port-file F [--port P] [--read-delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import inspect
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

HOST = "127.0.0.1"
USERNAME = "sftp-import"
PASSWORD_ENV = "SFTP_IMPORT_DEMO_PASSWORD"


@dataclass(frozen=True)
class ServerInfo:
    """Where the server listens and what a client needs to log in and verify it."""

    host: str
    port: int
    username: str
    password: str | None
    key_file: Path
    known_hosts: Path
    host_key_file: Path
    root: Path
    # the user name of each login begun, a connection each, in order (this server's; OpenSSH's are not counted)
    logins: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The SFTP_IMPORT_SFTP_* variables that point the platform at this server (key login)."""
        return {
            "SFTP_IMPORT_SFTP_HOST": self.host,
            "SFTP_IMPORT_SFTP_PORT": str(self.port),
            "SFTP_IMPORT_SFTP_USERNAME": self.username,
            "SFTP_IMPORT_SFTP_KEY_FILE": str(self.key_file),
            "SFTP_IMPORT_SFTP_KNOWN_HOSTS": str(self.known_hosts),
            "SFTP_IMPORT_SFTP_ROOT": "/",
        }


def _private_key(path: Path) -> asyncssh.SSHKey:
    """Load the key at path, generating an ed25519 key there (mode 600) the first time."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return key


def prepare_keys(state_dir: Path) -> tuple[Path, Path]:
    """The server's host key and the client's key in state_dir, created if missing (kept across restarts)."""
    host_key, client_key = state_dir / "ssh_host_ed25519_key", state_dir / "client_ed25519_key"
    _private_key(host_key)
    _private_key(client_key)
    return host_key, client_key


def write_known_hosts(path: Path, host: str, port: int, host_key_file: Path) -> None:
    """A known_hosts file with one line for [host]:port and the server's public key."""
    public = asyncssh.read_private_key(str(host_key_file)).export_public_key("openssh").decode().strip()
    target = host if port == 22 else f"[{host}]:{port}"
    path.write_text(f"{target} {public}\n")


class ChrootedSFTPServer(asyncssh.SFTPServer):
    """The chrooted SFTP server; `read_delay` slows every read (one at a time) to simulate a slow link.
    Tests subclass it to inject faults (`running_server(..., server_class=…)`)."""

    read_delay = 0.0

    def __init__(self, chan: asyncssh.SSHServerChannel, chroot: bytes) -> None:
        super().__init__(chan, chroot=chroot)
        self._one_read = asyncio.Lock()  # clients pipeline reads; serialise them so the delay adds up

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        if self.read_delay:
            async with self._one_read:
                await asyncio.sleep(self.read_delay)
        data = super().read(file_obj, offset, size)
        return await data if inspect.isawaitable(data) else data


class _Auth(asyncssh.SSHServer):
    """Accept exactly one user, by the generated client key or (if set) the password; note each login begun."""

    def __init__(self, username: str, client_key: asyncssh.SSHKey, password: str | None, logins: list[str]) -> None:
        self._username = username
        self._public = client_key.export_public_key("openssh")
        self._password = password
        self._logins = logins

    def begin_auth(self, username: str) -> bool:
        self._logins.append(username)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._username and key.export_public_key("openssh") == self._public

    def password_auth_supported(self) -> bool:
        return self._password is not None

    def validate_password(self, username: str, password: str) -> bool:
        expected = self._password or ""
        return username == self._username and hmac.compare_digest(password.encode(), expected.encode())


async def _start(
    root: Path,
    state_dir: Path,
    port: int,
    password: str | None,
    read_delay: float,
    server_class: type[ChrootedSFTPServer] = ChrootedSFTPServer,
) -> tuple[asyncssh.SSHAcceptor, ServerInfo]:
    host_key, client_key_file = prepare_keys(state_dir)
    client_key = asyncssh.read_private_key(str(client_key_file))
    root = root.resolve()

    def sftp_factory(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        server = server_class(chan, chroot=str(root).encode())
        server.read_delay = read_delay
        return server

    logins: list[str] = []
    acceptor = await asyncssh.create_server(
        lambda: _Auth(USERNAME, client_key, password, logins),
        HOST,
        port,
        server_host_keys=[str(host_key)],
        sftp_factory=sftp_factory,
        allow_scp=False,
    )
    actual_port = acceptor.get_port()
    known_hosts = state_dir / "known_hosts"
    write_known_hosts(known_hosts, HOST, actual_port, host_key)
    info = ServerInfo(HOST, actual_port, USERNAME, password, client_key_file, known_hosts, host_key, root, logins)
    return acceptor, info


@contextmanager
def running_server(
    root: Path,
    state_dir: Path,
    *,
    port: int = 0,
    password: str | None = None,
    read_delay: float = 0.0,
    server_class: type[ChrootedSFTPServer] = ChrootedSFTPServer,
) -> Iterator[ServerInfo]:
    """Run the server on its own asyncio loop in a thread until the block ends; port 0 picks a free port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="demo-sftp-server", daemon=True)
    thread.start()
    try:
        acceptor, info = asyncio.run_coroutine_threadsafe(
            _start(root, state_dir, port, password, read_delay, server_class), loop
        ).result(timeout=30)
        try:
            yield info
        finally:

            async def stop() -> None:
                """No more connections, and the sessions still open ended here: a task left pending when
                the loop closes is reported as destroyed at the interpreter's exit."""
                acceptor.close()
                await acceptor.wait_closed()
                sessions = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
                for task in sessions:
                    task.cancel()
                await asyncio.gather(*sessions, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


async def _serve_forever(args: argparse.Namespace) -> None:
    acceptor, info = await _start(
        Path(args.root), Path(args.state_dir), args.port, os.environ.get(PASSWORD_ENV) or None, args.read_delay
    )
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stopped.set)
    if args.port_file:
        port_file = Path(args.port_file)
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(info.port))
        tmp.replace(port_file)  # readers never see a half-written port
    print(f"SFTP server on {info.host}:{info.port}, root {info.root}, known_hosts {info.known_hosts}", flush=True)
    await stopped.wait()
    acceptor.close()
    await acceptor.wait_closed()


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground until SIGTERM/SIGINT (the password, if any, comes from the environment)."""
    parser = argparse.ArgumentParser(prog="python -m demo.sftp_server", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the folder clients see as /")
    parser.add_argument("--state-dir", required=True, help="keys and known_hosts (created if missing)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--read-delay", type=float, default=0.0, help="seconds of delay per read (tests)")
    args: Any = parser.parse_args(argv)
    asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
