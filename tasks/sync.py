"""The hourly sync of one client's SFTP folder into staging and the ledger (plain functions, no Prefect).

For each regular file directly in the client's folder, in this order:
1. a temporary name (`*.filepart`, `*.part`, `*.tmp`, `~$*`, dotfiles) is skipped, not recorded;
2. the upload already in the ledger (same name, size and mtime) is left alone (`known`);
3. a file not yet complete (size and mtime unchanged for `settle_seconds`) is recorded `waiting`;
4. another upload under a name in the ledger (any status, purged too) is recorded `ignored`, once;
5. an extension the platform does not accept is recorded `rejected`, with what is accepted;
6. anything else is copied to staging (temporary name, size + sha256, rename) and recorded `staged`.

The ledger row is written only after the copy is whole, so a crash leaves at worst a staged file
without a row, which the next sync overwrites. Store connections are held only for ledger reads and
writes, never during copies (DuckDB admits one writer process; the caller serialises writers with
`store_lock`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any, Literal

from schemas.contract import Contract
from tasks import store
from tasks.settings import ACCEPTED_EXTENSIONS, Settings
from tasks.sftp import Copied, RemoteFile, Sftp, remove_stale_temporaries

log = logging.getLogger(__name__)

TEMPORARY_PATTERNS = ("*.filepart", "*.part", "*.tmp", "~$*", ".*")
FLUSH_FILES = 100  # ledger rows of copied files are written in batches of this many…
FLUSH_SECONDS = 10.0  # …or at least this often, and always before the sync returns or raises

Outcome = Literal["staged", "waiting", "ignored", "rejected", "skipped", "known"]
OUTCOMES: tuple[Outcome, ...] = ("staged", "waiting", "ignored", "rejected", "skipped", "known")
StoreLock = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class FileOutcome:
    """What this sync did with one listed file, and why."""

    name: str
    outcome: Outcome
    reason: str | None = None
    sha256: str | None = None
    same_content_as: str | None = None


@dataclass
class ClientSyncResult:
    """One client's sync: how many files were listed and each file's outcome."""

    client: str
    listed: int = 0
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    def summary(self) -> dict[str, Any]:
        """Counts per outcome plus the files worth a look (rejected, same content), JSON-ready."""
        return {
            "client": self.client,
            "listed": self.listed,
            **{outcome: self.count(outcome) for outcome in OUTCOMES},
            "same_content": {f.name: f.same_content_as for f in self.files if f.same_content_as},
            "rejected_files": {f.name: f.reason for f in self.files if f.outcome == "rejected"},
            "seconds": round(self.seconds, 3),
        }


def is_temporary(name: str) -> bool:
    """True for names upload tools use while writing (and dotfiles): never staged, never recorded."""
    lowered = name.lower()
    return any(fnmatchcase(lowered, pattern) for pattern in TEMPORARY_PATTERNS)


def is_accepted(name: str) -> bool:
    """True when the extension is one the import reads (case-insensitive)."""
    return PurePosixPath(name).suffix.lower() in ACCEPTED_EXTENSIONS


def is_complete(file: RemoteFile, waiting: tuple[int, datetime, datetime] | None, now: datetime, settle: int) -> bool:
    """Complete: mtime at least `settle` seconds old, or seen unchanged (size, mtime) for that long.

    SFTP (v3) reports whole seconds, truncated: the mtime rule allows one second more to be safe."""
    window = timedelta(seconds=settle)
    if now - file.mtime >= window + timedelta(seconds=1):
        return True
    if waiting is None:
        return False
    size, mtime, first_seen = waiting
    return size == file.size and mtime == file.mtime and now - first_seen >= window


def _is_known_upload(known: store.KnownFile | None, file: RemoteFile) -> bool:
    """True when the listed file is the very upload the ledger already has (same size and mtime)."""
    return known is not None and (known.size, known.mtime) == (file.size, file.mtime)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ignored_reason(name: str, first_received: datetime) -> str:
    """The advice shown for a re-upload under a used name."""
    return (
        f"a file named {name} was already received on {_utc(first_received)}; "
        "re-uploads are not imported — upload it under a new name"
    )


def rejected_extension_reason(name: str) -> str:
    """Why a file with an unaccepted extension is refused, listing what is accepted."""
    suffix = PurePosixPath(name).suffix or "(none)"
    return (
        f"the extension {suffix} is not accepted; accepted: {', '.join(ACCEPTED_EXTENSIONS)} "
        "(upper or lower case) — upload the file again with one of these"
    )


def sync_client(
    sftp: Sftp,
    settings: Settings,
    contract: Contract,
    now: datetime,
    only_names: set[str] | None = None,
    store_lock: StoreLock = nullcontext,
) -> ClientSyncResult:
    """Sync one client's folder; with `only_names`, consider only those names (backfill).

    Raises on transport errors (missing folder, dropped connection) after recording whatever was
    copied whole before the error; the caller decides about retries."""
    started = time.monotonic()
    client = contract.id
    result = ClientSyncResult(client)
    remove_stale_temporaries(settings.staging_url, client, now)
    listed = sftp.list_files(contract.directory)
    if only_names is not None:
        listed = [f for f in listed if f.name in only_names]
    result.listed = len(listed)
    to_copy = _classify(settings, client, listed, now, only_names, store_lock, result)
    _copy_all(sftp, settings, contract, to_copy, now, store_lock, result)
    result.seconds = time.monotonic() - started
    log.info("sync %s: %s", client, {k: v for k, v in result.summary().items() if isinstance(v, int) and v})
    return result


def _classify(
    settings: Settings,
    client: str,
    listed: list[RemoteFile],
    now: datetime,
    only_names: set[str] | None,
    store_lock: StoreLock,
    result: ClientSyncResult,
) -> list[RemoteFile]:
    """Record waiting, ignored and rejected files in one short transaction; return the files to copy."""
    to_copy: list[RemoteFile] = []
    with store_lock(), store.open_store(settings.db_path) as con, store.transaction(con):
        known = store.known_files(con, client)
        waiting = store.waiting_files(con, client)
        settled: list[str] = []
        for file in sorted(listed, key=lambda f: f.name):
            if is_temporary(file.name):
                result.files.append(FileOutcome(file.name, "skipped", "temporary name (upload in progress)"))
            elif _is_known_upload(known.get(file.name), file):
                result.files.append(FileOutcome(file.name, "known", "already taken (unchanged since)"))
            elif not is_complete(file, waiting.get(file.name), now, settings.settle_seconds):
                store.record_waiting(con, client, file.name, file.size, file.mtime, now)
                result.files.append(FileOutcome(file.name, "waiting", "still being uploaded (size or time changing)"))
            elif file.name in known:
                reason = ignored_reason(file.name, known[file.name].received_at)
                store.record_ignored(con, client, file.name, file.size, file.mtime, now, reason)
                settled.append(file.name)
                result.files.append(FileOutcome(file.name, "ignored", reason))
            elif not is_accepted(file.name):
                reason = rejected_extension_reason(file.name)
                store.record_arrival(
                    con,
                    client=client,
                    name=file.name,
                    status="rejected",
                    size=file.size,
                    mtime=file.mtime,
                    received_at=now,
                    reason=reason,
                )
                settled.append(file.name)
                result.files.append(FileOutcome(file.name, "rejected", reason))
            else:
                to_copy.append(file)
        present = {f.name for f in listed}
        considered = waiting.keys() if only_names is None else waiting.keys() & only_names
        store.forget_waiting(con, client, settled + sorted(n for n in considered if n not in present))
    return to_copy


def _copy_all(
    sftp: Sftp,
    settings: Settings,
    contract: Contract,
    to_copy: list[RemoteFile],
    now: datetime,
    store_lock: StoreLock,
    result: ClientSyncResult,
) -> None:
    """Copy each file, writing ledger rows in batches (and always before an error propagates)."""
    copied: list[tuple[RemoteFile, Copied]] = []
    changed: list[tuple[RemoteFile, RemoteFile | None]] = []
    first_by_hash: dict[str, str] = {}
    last_flush = time.monotonic()
    try:
        for file in to_copy:
            done = sftp.copy_to_staging(contract.directory, file, settings.staging_url, contract.id)
            if done is None:
                changed.append((file, sftp.lstat(contract.directory, file.name)))
            else:
                copied.append((file, done))
            if len(copied) >= FLUSH_FILES or time.monotonic() - last_flush >= FLUSH_SECONDS:
                _flush(settings, contract.id, copied, changed, now, store_lock, first_by_hash, result)
                copied, changed, last_flush = [], [], time.monotonic()
    finally:
        _flush(settings, contract.id, copied, changed, now, store_lock, first_by_hash, result)


def _flush(
    settings: Settings,
    client: str,
    copied: list[tuple[RemoteFile, Copied]],
    changed: list[tuple[RemoteFile, RemoteFile | None]],
    now: datetime,
    store_lock: StoreLock,
    first_by_hash: dict[str, str],
    result: ClientSyncResult,
) -> None:
    """Write the ledger rows of whole copies, and put files that changed during their copy back to waiting."""
    if not copied and not changed:
        return
    with store_lock(), store.open_store(settings.db_path) as con, store.transaction(con):
        for file, done in copied:
            # looked up before this file's row exists, so it never names itself
            same = first_by_hash.get(done.sha256) or store.file_with_hash(con, client, done.sha256)
            first_by_hash.setdefault(done.sha256, same or file.name)
            store.record_arrival(
                con,
                client=client,
                name=file.name,
                status="staged",
                size=done.size,
                mtime=file.mtime,
                received_at=now,
                sha256=done.sha256,
                staged_path=done.staged_path,
                same_content_as=same,
            )
            result.files.append(FileOutcome(file.name, "staged", None, done.sha256, same))
        gone = [file.name for file, _ in copied]
        for file, current in changed:
            if current is None:  # deleted or replaced by a link/folder during the copy
                gone.append(file.name)
                continue
            store.record_waiting(con, client, current.name, current.size, current.mtime, now)
            result.files.append(FileOutcome(file.name, "waiting", "changed while being copied"))
        store.forget_waiting(con, client, gone)
