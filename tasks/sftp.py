"""SFTP transport (sshfs/asyncssh): connect with a verified host key, list, copy to staging, delete.

Only transport lives here; what to copy is decided by `tasks.sync`. Rules kept here:
- the host key is always checked against a known_hosts file; without one we refuse to connect;
- a listing keeps regular files directly in the folder (the server reports lstat attributes, so
  symlinks, folders and special files are dropped, never followed);
- a copy lands under a temporary name, is checked (size, sha256 while streaming, remote file
  unchanged), and only then renamed to its final name: a crash never leaves a half file there;
- every operation (connecting, a listing, one read, a rename) is bounded by the timeout setting, so a
  server that stops answering fails the client's sync (`SftpTimeout`, retried) instead of hanging it;
  a refused login is `LoginRefused`, a configuration fault that no retry repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import posixpath
import stat
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterator
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
from fsspec.asyn import sync
from fsspec.exceptions import FSTimeoutError
from fsspec.spec import AbstractFileSystem
from sshfs import SSHFileSystem

from tasks.errors import ConfigurationError
from tasks.settings import SftpSettings
from tasks.staging import staged_url, staging_fs
from tasks.temporary_names import TMP_DIR, writing_name

log = logging.getLogger(__name__)

STALE_TMP = timedelta(hours=6)  # leftovers of a crashed copy older than this are removed
CHUNK = 1 << 20  # one read: asyncssh pipelines it in the server's block size; the next is in flight meanwhile
# AES-GCM first (AES-NI in OpenSSL: the cipher costs least of the client's CPU), then asyncssh's defaults
FAST_CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
PARALLEL_COPIES = 4  # files copied at once on one connection: small files' round trips and fsyncs overlap

T = TypeVar("T")


class SftpConfigError(ConfigurationError):
    """The SFTP settings cannot work (no known_hosts, no credentials): not worth retrying."""


class HostKeyRejected(ConfigurationError):
    """The server's host key is unknown or does not match known_hosts: nothing is copied."""


class LoginRefused(ConfigurationError):
    """The server refused the platform's login (user, key or password): ops fix the settings, a retry fails the same."""


class SftpTimeout(TimeoutError):
    """The server did not answer one operation within the timeout (a stall): transient, retried later."""


@dataclass(frozen=True)
class RemoteFile:
    """A regular file in a client's folder, as listed (lstat attributes)."""

    name: str
    size: int
    mtime: datetime  # UTC


@dataclass(frozen=True)
class Copied:
    """A whole copy in staging: its URL (or local path), size and sha256."""

    staged_path: str
    size: int
    sha256: str


def _remote_file(name: str, attrs: Any) -> RemoteFile | None:
    """A RemoteFile for a regular file's attributes, None for anything else (link, folder, device)."""
    if attrs.permissions is None or not stat.S_ISREG(attrs.permissions) or attrs.mtime is None:
        return None
    return RemoteFile(name, int(attrs.size), datetime.fromtimestamp(attrs.mtime, tz=UTC))


class Sftp:
    """One SFTP connection to the clients' server; paths are client folders under the root."""

    def __init__(self, fs: SSHFileSystem, root: str, server: str, timeout: float) -> None:
        self.fs = fs
        self.root = root
        self.server = server  # host:port, for messages
        self.timeout = timeout
        self.stalled = False  # an operation timed out: the connection is not closed politely

    def path(self, directory: str, name: str | None = None) -> str:
        """The remote path of a client folder, or of a file in it."""
        folder = posixpath.join(self.root, directory)
        return folder if name is None else posixpath.join(folder, name)

    def list_files(self, directory: str) -> list[RemoteFile]:
        """The regular files directly in a client's folder; FileNotFoundError if the folder is missing."""
        folder = self.path(directory)
        try:
            entries = self._call("listing", folder, self.fs._ls, folder, detail=True)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "client folder not found on the SFTP server", folder) from None
        files = []
        for entry in entries:
            # sshfs decodes the readdir attributes, which both OpenSSH and asyncssh take from lstat:
            # a symlink is type "link", never "file". The mode is checked again to be sure.
            if entry["type"] != "file" or entry["mtime"] is None or not stat.S_ISREG(entry["permissions"] or 0):
                continue
            files.append(RemoteFile(posixpath.basename(entry["name"]), int(entry["size"]), entry["mtime"]))
        return files

    def lstat(self, directory: str, name: str) -> RemoteFile | None:
        """The file's attributes now, without following links; None if it is gone or no longer a regular file."""

        async def _lstat() -> RemoteFile | None:
            async with self.fs._pool.get() as channel:  # sshfs has no public lstat
                return await self._lstat_on(channel, self.path(directory, name), name)

        return self._call("checking", self.path(directory, name), _lstat)

    async def _lstat_on(self, channel: Any, path: str, name: str) -> RemoteFile | None:
        """`lstat` of `path` on an open SFTP channel, bounded by the timeout."""
        try:
            attrs = await self._bounded("checking", path, channel.lstat, path)
        except asyncssh.SFTPNoSuchFile:
            return None
        return _remote_file(name, attrs)

    def copy_to_staging(
        self, directory: str, files: list[RemoteFile], staging_url: str, client: str
    ) -> Generator[tuple[RemoteFile, Copied | None]]:
        """Copy files to `<staging>/<client>/<name>` via temporary names, PARALLEL_COPIES at once; yields each
        file with its copy, or None if it changed or went meanwhile, in the order given.

        A copy is renamed into place only when its turn comes and the bytes read equal the listed size, are
        on disk and the remote file still has the listed size and mtime; otherwise the temporary copy is
        discarded, as it is on any error (a dropped or stalled connection, a full disk). An error is raised
        at its file's turn, after the files before it were yielded; the copies then in flight are discarded.
        An earlier staged file of the same name (a crash before its ledger row) is replaced."""
        staging, base = staging_fs(staging_url)
        tmp_dir, final_dir = posixpath.join(base, TMP_DIR, client), posixpath.join(base, client)
        staging.makedirs(tmp_dir, exist_ok=True)
        staging.makedirs(final_dir, exist_ok=True)
        todo = iter(files)
        in_flight: deque[tuple[RemoteFile, str, Future[tuple[int, str] | None]]] = deque()

        def start_next() -> None:
            file = next(todo, None)
            if file is not None:
                tmp = posixpath.join(tmp_dir, f"{uuid.uuid4().hex}.part")
                copying = self._copy_remote(self.path(directory, file.name), file, staging, tmp)
                in_flight.append((file, tmp, asyncio.run_coroutine_threadsafe(copying, self.fs.loop)))

        for _ in range(PARALLEL_COPIES):
            start_next()
        try:
            while in_flight:
                file, tmp, future = in_flight[0]
                copied = future.result()
                in_flight.popleft()
                start_next()
                if copied is None:
                    yield file, None
                    continue
                try:
                    staging.mv(tmp, posixpath.join(final_dir, file.name))
                except BaseException:
                    with contextlib.suppress(Exception):
                        staging.rm_file(tmp)
                    raise
                yield file, Copied(staged_url(staging_url, client, file.name), *copied)
        finally:  # copies not taken (an error, or the caller stopped): each operation is bounded, so they end
            futures.wait([future for _, _, future in in_flight])
            for _, tmp, _ in in_flight:
                with contextlib.suppress(Exception):
                    staging.rm_file(tmp)

    async def _copy_remote(
        self, path: str, file: RemoteFile, staging: AbstractFileSystem, tmp: str
    ) -> tuple[int, str] | None:
        """One remote file into the local `tmp`: (bytes, sha256) when whole and unchanged, else None; `tmp` is
        left only for a whole copy."""
        whole = False
        try:
            async with self.fs._pool.get() as channel:
                try:
                    remote = await self._bounded("opening", path, channel.open, path, "rb")
                except asyncssh.SFTPNoSuchFile:  # deleted between the listing and the copy
                    return None
                try:
                    size, sha256 = await self._stream(remote, path, file.size, staging, tmp)
                finally:
                    with contextlib.suppress(Exception):
                        await self._bounded("closing", path, remote.close)
                now = await self._lstat_on(channel, path, file.name)
            whole = size == file.size and now == file
            return (size, sha256) if whole else None
        finally:
            if not whole:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(staging.rm_file, tmp)

    async def _stream(
        self, remote: Any, path: str, listed_size: int, staging: AbstractFileSystem, tmp: str
    ) -> tuple[int, str]:
        """Up to the listed size of the remote file into `tmp`, then on disk: (bytes, sha256). The next read is
        in flight while a chunk is hashed and written. A file that grew is caught by the caller's lstat; one
        that shrank ends early."""
        digest, size = hashlib.sha256(), 0
        local = await asyncio.to_thread(staging.open, tmp, "wb")
        reading = self._read_ahead(remote, path, 0, listed_size)
        try:
            while reading is not None:
                chunk = await reading
                reading = None
                if not chunk:
                    break
                size += len(chunk)
                reading = self._read_ahead(remote, path, size, listed_size)
                await asyncio.to_thread(_write_chunk, local, digest, chunk)
            await asyncio.to_thread(_sync_to_disk, local)
        finally:
            if reading is not None:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
            await asyncio.to_thread(local.close)
        return size, digest.hexdigest()

    def _read_ahead(self, remote: Any, path: str, offset: int, listed_size: int) -> asyncio.Task[bytes] | None:
        """The read of the next chunk, started (None past the listed size)."""
        if offset >= listed_size:
            return None
        return asyncio.ensure_future(
            self._bounded("reading", path, remote.read, min(CHUNK, listed_size - offset), offset)
        )

    def write_atomic(self, directory: str, name: str, data: bytes) -> None:
        """Write `name` (a path in the client's folder, e.g. `results/a.csv.json`) so no reader sees part of it.

        The bytes go to a temporary dotfile beside it, which is then renamed over the old file: with
        the `posix-rename` extension where the server offers it (atomic), else the old file is removed
        first (a reader may miss the file for a moment, never see half of it). The folder is made
        when missing."""
        final = self.path(directory, name)
        folder = posixpath.dirname(final)
        tmp = posixpath.join(folder, writing_name(posixpath.basename(final)))

        async def _write() -> None:
            async with self.fs._pool.get() as channel:
                try:
                    handle = await channel.open(tmp, "wb")
                except asyncssh.SFTPNoSuchFile:
                    await channel.makedirs(folder, exist_ok=True)
                    handle = await channel.open(tmp, "wb")
                try:
                    async with handle:
                        await handle.write(data)
                    try:
                        await channel.posix_rename(tmp, final)
                    except asyncssh.SFTPOpUnsupported:
                        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                            await channel.remove(final)
                        await channel.rename(tmp, final)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await channel.remove(tmp)
                    raise

        self._call("writing", final, _write)

    def remove(self, directory: str, name: str) -> None:
        """Delete one file from a client's folder (retention); FileNotFoundError if it is gone."""
        self.remove_path(self.path(directory, name))

    def remove_path(self, path: str) -> None:
        """Delete one remote file by its full path; FileNotFoundError if it is gone."""
        self._call("deleting", path, self.fs._rm_file, path)

    def exists(self, path: str) -> bool:
        """Whether a remote path exists."""
        return bool(self._call("checking", path, self.fs._exists, path))

    def _call(self, doing: str, path: str, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run one SFTP operation on the connection's loop, bounded by the timeout (`_bounded`)."""
        try:
            return sync(self.fs.loop, self._bounded, doing, path, func, *args, **kwargs)
        except FSTimeoutError as exc:  # fsspec's `sync` re-raises any TimeoutError as its own: ours comes out
            if isinstance(exc.__cause__, SftpTimeout):
                raise exc.__cause__ from None
            raise

    async def _bounded(self, doing: str, path: str, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """One SFTP operation bounded by the timeout: a stalled server raises SftpTimeout (transient: the task
        retries it) instead of hanging the sync."""
        operation = asyncio.ensure_future(func(*args, **kwargs))
        try:
            await asyncio.wait({operation}, timeout=self.timeout)
        finally:  # a stalled operation is abandoned, not awaited (its cancellation may never complete)
            if not operation.done():
                operation.add_done_callback(_retrieve)
                operation.cancel()
        if not operation.done():
            self.stalled = True
            raise SftpTimeout(
                f"the SFTP server {self.server} did not answer within {self.timeout:g} s while {doing} {path} "
                "(SFTP_IMPORT_SFTP_TIMEOUT_SECONDS)"
            )
        try:
            return operation.result()
        except ValueError as exc:  # sshfs's word for a connection it can no longer open a channel on
            if "SFTP connections" not in str(exc):
                raise
            raise ConnectionError(f"the SFTP server {self.server} dropped the connection while {doing} {path}") from exc

    def is_open(self) -> bool:
        """False once the SSH connection is closed (by the server, or after a stall)."""
        return not self.stalled and not self.fs._client.is_closed()

    def close(self) -> None:
        """Close the SSH connection now rather than at garbage collection."""

        async def _close() -> None:
            if self.stalled:  # it would not answer a polite close either: drop the connection
                self.fs._client.abort()
            else:
                await self.fs._pool.close()
            await self.fs._stack.aclose()

        with contextlib.suppress(Exception):
            sync(self.fs.loop, _close, timeout=self.timeout)
        for finalizer in sshfs_finalizers(self.fs):
            finalizer.detach()


def sshfs_finalizers(fs: SSHFileSystem) -> list[weakref.finalize]:
    """The finalizers sshfs registered to close `fs` at garbage collection.

    Closed by `Sftp.close`, a filesystem must not be closed again there: sshfs's finalizer waits for
    the IO loop through fsspec's `sync`, at least 1 s, and a collection can start in a thread that
    holds a lock the loop needs (a thread pool's `submit`), so it waits the whole second, once per
    filesystem: a pass after one that used 8 connections stalled 8 s in one collection."""
    registry: dict[weakref.finalize, Any] = getattr(weakref.finalize, "_registry", {})
    return [finalizer for finalizer in list(registry) if (found := finalizer.peek()) is not None and found[0] is fs]


def _retrieve(operation: asyncio.Future[Any]) -> None:
    """Take an abandoned operation's outcome, so asyncio does not report it as never retrieved."""
    if not operation.cancelled():
        operation.exception()


def _write_chunk(local: Any, digest: Any, chunk: bytes) -> None:
    """Hash a chunk and write it to the local copy (both release the GIL on a chunk this size)."""
    digest.update(chunk)
    local.write(chunk)


def _sync_to_disk(handle: Any) -> None:
    """Flush a local staging file to disk before its rename, so a power cut cannot leave an empty file."""
    handle.flush()
    with contextlib.suppress(AttributeError, OSError, ValueError, NotImplementedError):
        os.fsync(handle.fileno())


def remove_stale_temporaries(staging_url: str, client: str, now: datetime) -> int:
    """Delete temporary copies left by a crashed sync (older than STALE_TMP); returns how many."""
    staging, base = staging_fs(staging_url)
    tmp_dir = posixpath.join(base, TMP_DIR, client)
    if not staging.exists(tmp_dir):
        return 0
    removed = 0
    for entry in staging.ls(tmp_dir, detail=True):
        modified = _modified(staging, entry)
        if modified is not None and now - modified > STALE_TMP:
            staging.rm_file(entry["name"])
            removed += 1
    return removed


def _modified(staging: AbstractFileSystem, entry: dict[str, Any]) -> datetime | None:
    raw = entry.get("mtime") or entry.get("LastModified") or entry.get("last_modified")
    if isinstance(raw, int | float):
        return datetime.fromtimestamp(raw, tz=UTC)
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    return None


def _connect_args(settings: SftpSettings) -> dict[str, Any]:
    """asyncssh options: known_hosts always, only the configured credentials (no agent, no ~/.ssh)."""
    if not settings.known_hosts:
        raise SftpConfigError(
            "SFTP_IMPORT_SFTP_KNOWN_HOSTS is not set: host keys are always verified, so a known_hosts file "
            f"with the key of {settings.host}:{settings.port} is required (e.g. from ssh-keyscan, checked by hand)"
        )
    if not Path(settings.known_hosts).is_file():
        raise SftpConfigError(f"known_hosts file {settings.known_hosts} does not exist")
    if not settings.password and not settings.key_file:
        raise SftpConfigError("set SFTP_IMPORT_SFTP_PASSWORD or SFTP_IMPORT_SFTP_KEY_FILE")
    return {
        "port": settings.port,
        "username": settings.username,
        "known_hosts": settings.known_hosts,
        "password": settings.password,
        "client_keys": [settings.key_file] if settings.key_file else None,
        "agent_path": None,
        "encryption_algs": FAST_CIPHERS,
        "config": [],
        "connect_timeout": settings.timeout_seconds,
        "login_timeout": settings.timeout_seconds,
    }


def open_connection(settings: SftpSettings) -> Sftp:
    """An SFTP connection, host key verified (HostKeyRejected when it does not match); the caller closes it."""
    try:
        fs = SSHFileSystem(
            settings.host, skip_instance_cache=True, timeout=settings.timeout_seconds, **_connect_args(settings)
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyRejected(
            f"host key of {settings.host}:{settings.port} is not the one in {settings.known_hosts}: "
            f"refusing to connect ({exc.reason})"
        ) from None
    except (asyncssh.PermissionDenied, PermissionError) as exc:  # sshfs re-raises the first as the second
        if not isinstance(exc, asyncssh.PermissionDenied) and not isinstance(exc.__cause__, asyncssh.PermissionDenied):
            raise  # a local file we may not read, not the server's refusal
        credential = f"the key {settings.key_file}" if settings.key_file else "the password SFTP_IMPORT_SFTP_PASSWORD"
        raise LoginRefused(
            f"the SFTP server {settings.host}:{settings.port} refused the login of user {settings.username!r} with "
            f"{credential}: check SFTP_IMPORT_SFTP_USERNAME and the credential (not retried: a retry fails the same)"
        ) from None
    except (TimeoutError, FSTimeoutError):
        raise SftpTimeout(
            f"the SFTP server {settings.host}:{settings.port} did not complete the connection within "
            f"{settings.timeout_seconds:g} s (SFTP_IMPORT_SFTP_TIMEOUT_SECONDS)"
        ) from None
    log.info("connected to %s:%s as %s", settings.host, settings.port, settings.username)
    if fs.loop.get_exception_handler() is not _lost_reads_quiet:  # fsspec's one IO loop, for the process
        fs.loop.set_exception_handler(_lost_reads_quiet)
    return Sftp(fs, settings.root, f"{settings.host}:{settings.port}", settings.timeout_seconds)


def _lost_reads_quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The IO loop's handler of errors nobody awaited: asyncssh's parallel reads of a connection dropped
    after a stall end with SFTPConnectionLost, which the stall already reported (SftpTimeout); anything
    else is reported as asyncio does, as an error."""
    if isinstance(context.get("exception"), asyncssh.SFTPConnectionLost):
        log.debug("a read of a dropped connection ended: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


@contextlib.contextmanager
def connect(settings: SftpSettings) -> Iterator[Sftp]:
    """An SFTP connection for the block, host key verified; HostKeyRejected when it does not match."""
    connection = open_connection(settings)
    try:
        yield connection
    finally:
        connection.close()


class Connections:
    """The SFTP connections a pass shares between its clients, so a client costs no SSH login.

    `lend()` gives an idle connection (or opens one when none is idle: one per worker at most) and takes
    it back when the block ends; a block that raises closes its connection instead, so a stalled or
    dropped connection, or one a client's failure left in doubt, never serves another client. A
    connection the server closed while idle is dropped before it is lent."""

    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings
        self._idle: list[Sftp] = []
        self._guard = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def lend(self) -> Iterator[Sftp]:
        """A connection for one client's work, returned for the next client unless the work raised."""
        connection = self._take() or open_connection(self.settings)
        try:
            yield connection
        except BaseException:
            connection.close()
            raise
        with self._guard:
            if not self._closed:
                self._idle.append(connection)
                return
        connection.close()

    def _take(self) -> Sftp | None:
        """An idle connection still open, closing those the server ended meanwhile; None when there is none."""
        while True:
            with self._guard:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if connection.is_open():
                return connection
            connection.close()

    def close(self) -> None:
        """Close the idle connections; one still lent is closed when it comes back."""
        with self._guard:
            idle, self._idle, self._closed = self._idle, [], True
        for connection in idle:
            connection.close()
