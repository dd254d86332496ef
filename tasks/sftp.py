"""SFTP transport (sshfs/asyncssh): connect with a verified host key, list, copy to staging, delete.

Only transport lives here; what to copy is decided by `tasks.sync`. Rules kept here:
- the host key is always checked against a known_hosts file; without one we refuse to connect;
- a listing keeps regular files directly in the folder (the server reports lstat attributes, so
  symlinks, folders and special files are dropped, never followed);
- a copy lands under a temporary name, is checked (size, sha256 while streaming, remote file
  unchanged), and only then renamed to its final name: a crash never leaves a half file there.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import posixpath
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncssh
import fsspec
from fsspec.asyn import sync
from fsspec.spec import AbstractFileSystem
from sshfs import SSHFileSystem

from tasks.errors import ConfigurationError
from tasks.settings import SftpSettings

log = logging.getLogger(__name__)

TMP_DIR = ".incoming"  # under the staging root; temporary copies, never read by the import
STALE_TMP = timedelta(hours=6)  # leftovers of a crashed copy older than this are removed
CHUNK = 1 << 20


class SftpConfigError(ConfigurationError):
    """The SFTP settings cannot work (no known_hosts, no credentials): not worth retrying."""


class HostKeyRejected(ConfigurationError):
    """The server's host key is unknown or does not match known_hosts: nothing is copied."""


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

    def __init__(self, fs: SSHFileSystem, root: str) -> None:
        self.fs = fs
        self.root = root

    def path(self, directory: str, name: str | None = None) -> str:
        """The remote path of a client folder, or of a file in it."""
        folder = posixpath.join(self.root, directory)
        return folder if name is None else posixpath.join(folder, name)

    def list_files(self, directory: str) -> list[RemoteFile]:
        """The regular files directly in a client's folder; FileNotFoundError if the folder is missing."""
        folder = self.path(directory)
        try:
            entries = self.fs.ls(folder, detail=True)
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

        async def _lstat() -> Any:
            async with self.fs._pool.get() as channel:  # sshfs has no public lstat
                return await channel.lstat(self.path(directory, name))

        try:
            attrs = sync(self.fs.loop, _lstat)
        except asyncssh.SFTPNoSuchFile:
            return None
        return _remote_file(name, attrs)

    def copy_to_staging(self, directory: str, file: RemoteFile, staging_url: str, client: str) -> Copied | None:
        """Copy a file to `<staging>/<client>/<name>` via a temporary name; None if it changed meanwhile.

        The copy is renamed into place only when the bytes read equal the listed size and the remote
        file still has the listed size and mtime; otherwise the temporary copy is discarded. An
        earlier staged file of the same name (a crash before its ledger row) is replaced."""
        staging, base = fsspec.core.url_to_fs(staging_url)
        tmp_dir = posixpath.join(base, TMP_DIR, client)
        final_dir = posixpath.join(base, client)
        staging.makedirs(tmp_dir, exist_ok=True)
        staging.makedirs(final_dir, exist_ok=True)
        tmp = posixpath.join(tmp_dir, f"{uuid.uuid4().hex}.part")
        digest, size = hashlib.sha256(), 0
        try:
            with self.fs.open(self.path(directory, file.name), "rb") as remote, staging.open(tmp, "wb") as local:
                block = remote.blocksize or CHUNK
                while size < file.size:  # the listed size; a file that grew is caught by the lstat below
                    chunk = remote.read(min(block, file.size - size))
                    if not chunk:
                        break
                    digest.update(chunk)
                    local.write(chunk)
                    size += len(chunk)
                _sync_to_disk(local)
            if size != file.size or self.lstat(directory, file.name) != file:
                staging.rm_file(tmp)
                return None
            final = posixpath.join(final_dir, file.name)
            staging.mv(tmp, final)
        except BaseException:
            with contextlib.suppress(Exception):
                staging.rm_file(tmp)
            raise
        return Copied(_staged_url(staging_url, client, file.name), size, digest.hexdigest())

    def write_atomic(self, directory: str, name: str, data: bytes) -> None:
        """Write `name` (a path in the client's folder, e.g. `results/a.csv.json`) so no reader sees part of it.

        The bytes go to a temporary dotfile beside it, which is then renamed over the old file: with
        the `posix-rename` extension where the server offers it (atomic), else the old file is removed
        first (a reader may miss the file for a moment, never see half of it). The folder is made
        when missing."""
        final = self.path(directory, name)
        folder = posixpath.dirname(final)
        tmp = posixpath.join(folder, f".{posixpath.basename(final)}.{uuid.uuid4().hex[:12]}.tmp")

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

        sync(self.fs.loop, _write)

    def remove(self, directory: str, name: str) -> None:
        """Delete one file from a client's folder (retention); FileNotFoundError if it is gone."""
        self.fs.rm_file(self.path(directory, name))

    def close(self) -> None:
        """Close the SSH connection now rather than at garbage collection."""

        async def _close() -> None:
            await self.fs._pool.close()
            await self.fs._stack.aclose()

        with contextlib.suppress(Exception):
            sync(self.fs.loop, _close, timeout=10)


def _sync_to_disk(handle: Any) -> None:
    """Flush a local staging file to disk before its rename, so a power cut cannot leave an empty file."""
    handle.flush()
    with contextlib.suppress(AttributeError, OSError, ValueError, NotImplementedError):
        os.fsync(handle.fileno())


def _staged_url(staging_url: str, client: str, name: str) -> str:
    """Where the import finds a staged file: a local path, or a URL under a remote staging."""
    return posixpath.join(staging_url.rstrip("/"), client, name)


def remove_stale_temporaries(staging_url: str, client: str, now: datetime) -> int:
    """Delete temporary copies left by a crashed sync (older than STALE_TMP); returns how many."""
    staging, base = fsspec.core.url_to_fs(staging_url)
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
        "config": [],
        "connect_timeout": 30,
    }


@contextlib.contextmanager
def connect(settings: SftpSettings) -> Iterator[Sftp]:
    """An SFTP connection for the block, host key verified; HostKeyRejected when it does not match."""
    try:
        fs = SSHFileSystem(settings.host, skip_instance_cache=True, **_connect_args(settings))
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyRejected(
            f"host key of {settings.host}:{settings.port} is not the one in {settings.known_hosts}: "
            f"refusing to connect ({exc.reason})"
        ) from None
    log.info("connected to %s:%s as %s", settings.host, settings.port, settings.username)
    connection = Sftp(fs, settings.root)
    try:
        yield connection
    finally:
        connection.close()
