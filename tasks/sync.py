"""The hourly sync of one client's SFTP folder into staging and the ledger (plain functions, no Prefect).

A pass has three steps, so the store is touched twice however many clients there are:
1. `list_folders` lists every client's folder, then `store.sync_ledgers` reads what each client's sync
   needs for the names it listed (their ledger rows, the waiting files) in one query, however long
   the ledger;
2. `prepare` classifies one client's listing (no store or SFTP access) and `copy_new` copies the new
   files to staging (no store access); the ledger changes they want are `LedgerChange`s in the
   client's `ClientSyncResult` (a client with nothing to copy needs no SFTP work);
3. `write_changes` applies one client's changes in one transaction (the flow writes every client's
   in one store session, under the store limit).

`prepare` decides, for each regular file directly in the client's folder, in this order:
1. a temporary name (`*.filepart`, `*.part`, `*.tmp`, `~$*`, dotfiles) is skipped, not recorded;
2. the upload already in the ledger (same name, size and mtime) is left alone (`known`);
3. a file not yet complete (size and mtime unchanged for `settle_seconds`) is recorded `waiting`;
4. another upload under a name in the ledger (any status, purged too) is recorded `ignored`, once;
5. an extension the platform does not accept is recorded `rejected`, with what is accepted;
6. anything else is copied to staging (temporary name, size + sha256, rename), checked (`tasks.pickup`:
   read and validated as the import will) and recorded `staged` with what the check found.
The files received or ignored get their result document in the client's `results/` (tasks/results.py).

A ledger row is written only after its copy is whole, so a crash leaves at worst a staged file
without a row; the next pass does not know the name, so it copies the file again over it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any, Literal

from schemas.contract import Contract
from tasks import formats, pickup, store
from tasks.errors import RejectCode
from tasks.settings import Settings
from tasks.sftp import Connections, Copied, RemoteFile, Sftp, remove_stale_temporaries

log = logging.getLogger(__name__)

TEMPORARY_PATTERNS = ("*.filepart", "*.part", "*.tmp", "~$*", ".*")

Outcome = Literal["staged", "waiting", "ignored", "rejected", "skipped", "known"]
OUTCOMES: tuple[Outcome, ...] = ("staged", "waiting", "ignored", "rejected", "skipped", "known")


@dataclass(frozen=True)
class ListedFile:
    """What this sync did with one listed file, and why."""

    name: str
    outcome: Outcome
    reason: str | None = None
    sha256: str | None = None
    same_content_as: str | None = None


@dataclass(frozen=True)
class Waiting:
    """Ledger change: a file still being written (its settle clock restarts when size or mtime change)."""

    name: str
    size: int
    mtime: datetime


@dataclass(frozen=True)
class Ignored:
    """Ledger change: a re-upload under a used name (recorded once per distinct upload)."""

    name: str
    size: int
    mtime: datetime
    reason: str


@dataclass(frozen=True)
class Arrival:
    """Ledger change: the row of a file staged (its copy is whole) or rejected on arrival."""

    name: str
    status: Literal["staged", "rejected"]
    size: int
    mtime: datetime
    reason: str | None = None
    sha256: str | None = None
    staged_path: str | None = None
    same_content_as: str | None = None
    code: str | None = None  # why rejected on arrival (RejectCode)
    pickup: str | None = None  # the pickup check of a staged file (`PickupCheck.to_json`)


@dataclass(frozen=True)
class ForgetWaiting:
    """Ledger change: waiting entries no longer waiting (taken, refused or gone from the server)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class SamplesWritten:
    """Store change: the client's samples folder was written from the contract of this digest."""

    digest: str


LedgerChange = Waiting | Ignored | Arrival | ForgetWaiting | SamplesWritten


@dataclass
class ClientSyncResult:
    """One client's sync: files listed, each file's outcome, and the ledger changes to write (at `now`)."""

    client: str
    now: datetime
    listed: int = 0
    files: list[ListedFile] = field(default_factory=list)
    changes: list[LedgerChange] = field(default_factory=list)
    seconds: float = 0.0
    pickup_seconds: float = 0.0  # of `seconds`, the pickup checks of the files staged

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
            "pickup_seconds": round(self.pickup_seconds, 3),
        }


def is_temporary(name: str) -> bool:
    """True for names upload tools use while writing (and dotfiles): never staged, never recorded."""
    lowered = name.lower()
    return any(fnmatchcase(lowered, pattern) for pattern in TEMPORARY_PATTERNS)


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


def is_known_upload(known: store.KnownFile | None, file: RemoteFile) -> bool:
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
    suffix = name[len(PurePosixPath(formats.wrappers(name)[0]).stem) :] or "(none)"  # .txt, .txt.gz
    return (
        f"the extension {suffix} is not accepted; accepted: {', '.join(formats.extensions())} "
        f"(upper or lower case), {formats.wrapped_text()} — upload the file again with one of these"
    )


def sync_client(
    sftp: Sftp,
    settings: Settings,
    contract: Contract,
    now: datetime,
    only_names: set[str] | None = None,
) -> ClientSyncResult:
    """Sync one client's folder on its own (list, read, classify, copy, write); with `only_names`, only
    those names (backfill).

    Raises on transport errors (missing folder, dropped connection) after recording whatever was
    copied whole before the error; the caller decides about retries. The store is opened for
    writing (holding its writer lock) only around the write, and not at all when there is nothing to write."""
    prepared = prepare_alone(sftp, settings, contract, now, only_names)
    result = prepared.attempt()
    try:
        copy_new(sftp, settings, contract, prepared, result)
    finally:
        if result.changes:
            with settings.store.write() as con:
                write_changes(con, result)
    log.info("sync %s: %s", contract.id, result.summary())
    return result


def list_folder(sftp: Sftp, contract: Contract, only_names: set[str] | None = None) -> list[RemoteFile]:
    """The regular files in the client's folder (only `only_names`, when given); FileNotFoundError if it is missing."""
    listed = sftp.list_files(contract.directory)
    return listed if only_names is None else [f for f in listed if f.name in only_names]


def prepare_alone(
    sftp: Sftp, settings: Settings, contract: Contract, now: datetime, only_names: set[str] | None = None
) -> Prepared:
    """One client on its own: its folder listed, the temporary copies a crash left in its staging removed,
    its ledger read for the names listed, its files classified."""
    listed = list_folder(sftp, contract, only_names)
    remove_stale_temporaries(settings.staging_url, contract.id, now)
    return prepare(settings, contract, read_ledger(settings, contract.id, listed), listed, now, only_names)


def list_folders(
    connections: Connections, settings: Settings, contracts: list[Contract], workers: int, now: datetime
) -> dict[str, list[RemoteFile]]:
    """Every client's folder listed, and the temporary copies a crash left in its staging removed,
    `workers` at once over the shared connections; a client whose listing fails is left out and logged
    (its own sync lists it again, with its retries)."""

    def listing(contract: Contract) -> list[RemoteFile] | None:
        try:
            with connections.lend() as connection:
                listed = list_folder(connection, contract)
        except Exception as exc:  # this client alone: the others are listed
            log.warning("%s: listing failed, listed again by its sync: %s: %s", contract.id, type(exc).__name__, exc)
            return None
        remove_stale_temporaries(settings.staging_url, contract.id, now)
        return listed

    with ThreadPoolExecutor(workers, thread_name_prefix="list-folders") as pool:
        found = dict(zip((c.id for c in contracts), pool.map(listing, contracts), strict=True))
    return {client: listed for client, listed in found.items() if listed is not None}


def lookup_names(listed: list[RemoteFile]) -> list[str]:
    """The listed names the ledger is asked about (temporary names are skipped before it is consulted)."""
    return [f.name for f in listed if not is_temporary(f.name)]


def read_ledger(settings: Settings, client: str, listed: list[RemoteFile]) -> store.ClientLedger:
    """One client's ledger for its listing, in a short read-only session."""
    with settings.store.read() as con:
        return store.sync_ledgers(con, {client: lookup_names(listed)})[client]


@dataclass(frozen=True)
class Prepared:
    """One client's listing classified against its ledger, before any copy: the outcomes so far and the
    files left to copy (a client with none needs no SFTP work this pass)."""

    result: ClientSyncResult
    to_copy: list[RemoteFile]
    first_by_hash: dict[str, str]  # the ledger's, for the copies' same-content check

    def attempt(self) -> ClientSyncResult:
        """A result of its own for one attempt at the copies (a retry starts again from the classification)."""
        return replace(self.result, files=list(self.result.files), changes=list(self.result.changes))


def prepare(
    settings: Settings,
    contract: Contract,
    ledger: store.ClientLedger,
    listed: list[RemoteFile],
    now: datetime,
    only_names: set[str] | None = None,
) -> Prepared:
    """Classify a client's listed files from the store's answer for them (`store.sync_ledgers`), with no
    SFTP, staging or store access."""
    started = time.monotonic()
    result = ClientSyncResult(contract.id, now, listed=len(listed))
    to_copy = _classify(settings, ledger, listed, only_names, result)
    result.seconds = time.monotonic() - started
    return Prepared(result, to_copy, ledger.first_by_hash)


def copy_new(sftp: Sftp, settings: Settings, contract: Contract, prepared: Prepared, result: ClientSyncResult) -> None:
    """Copy and check the prepared files (no store access); outcomes and changes go into `result`.

    Changes are appended as they happen, so on a transport error `result` holds every whole copy
    made before it."""
    started = time.monotonic()
    try:
        _copy_all(sftp, settings, contract, prepared, result)
    finally:
        result.seconds += time.monotonic() - started


def _classify(
    settings: Settings,
    ledger: store.ClientLedger,
    listed: list[RemoteFile],
    only_names: set[str] | None,
    result: ClientSyncResult,
) -> list[RemoteFile]:
    """Decide each listed file's fate from the ledger read at the start of the pass; return the files to copy."""
    known, waiting, now = dict(ledger.known), ledger.waiting, result.now  # known: by store.name_key
    to_copy: list[RemoteFile] = []
    settled: list[str] = []
    for file in sorted(listed, key=lambda f: f.name):
        key = store.name_key(file.name)
        if is_temporary(file.name):
            result.files.append(ListedFile(file.name, "skipped", "temporary name (upload in progress)"))
        elif is_known_upload(known.get(key), file):
            result.files.append(ListedFile(file.name, "known", "already taken (unchanged since)"))
        elif not is_complete(file, waiting.get(file.name), now, settings.settle_seconds):
            result.changes.append(Waiting(file.name, file.size, file.mtime))
            result.files.append(ListedFile(file.name, "waiting", "still being uploaded (size or time changing)"))
        elif key in known:
            reason = ignored_reason(file.name, known[key].received_at)
            result.changes.append(Ignored(file.name, file.size, file.mtime, reason))
            settled.append(file.name)
            result.files.append(ListedFile(file.name, "ignored", reason))
        elif not formats.accepts(file.name):
            reason = rejected_extension_reason(file.name)
            result.changes.append(
                Arrival(file.name, "rejected", file.size, file.mtime, reason=reason, code=RejectCode.EXTENSION)
            )
            settled.append(file.name)
            result.files.append(ListedFile(file.name, "rejected", reason))
        else:
            to_copy.append(file)
            known[key] = store.KnownFile(file.name, now, None, file.size, file.mtime)  # a second form of it: ignored
    present = {f.name for f in listed}
    considered = waiting.keys() if only_names is None else waiting.keys() & only_names
    gone = settled + sorted(n for n in considered if n not in present)
    if gone:
        result.changes.append(ForgetWaiting(tuple(gone)))
    return to_copy


def _copy_all(sftp: Sftp, settings: Settings, contract: Contract, prepared: Prepared, result: ClientSyncResult) -> None:
    """Copy each file; a whole copy becomes an `Arrival`, a file that changed meanwhile goes back to waiting."""
    first_by_hash = dict(prepared.first_by_hash)  # the files this pass copies join it
    copies = sftp.copy_to_staging(contract.directory, prepared.to_copy, settings.staging_url, contract.id)
    with contextlib.closing(copies):  # copies still in flight are discarded when this ends early
        for file, done in copies:
            _record_copy(sftp, settings, contract, file, done, first_by_hash, result)


def _record_copy(
    sftp: Sftp,
    settings: Settings,
    contract: Contract,
    file: RemoteFile,
    done: Copied | None,
    first_by_hash: dict[str, str],
    result: ClientSyncResult,
) -> None:
    """A whole copy becomes an `Arrival` (checked, hash matched); a file that changed meanwhile goes back to
    waiting, one deleted is passed over."""
    if done is None:
        current = sftp.lstat(contract.directory, file.name)
        if current is None:  # deleted (or replaced by a link/folder) since the listing: the others go on
            result.changes.append(ForgetWaiting((file.name,)))
            result.files.append(ListedFile(file.name, "skipped", "deleted from the folder before it was copied"))
        else:
            result.changes.append(Waiting(current.name, current.size, current.mtime))
            result.files.append(ListedFile(file.name, "waiting", "changed while being copied"))
        return
    same = first_by_hash.setdefault(done.sha256, file.name)  # an earlier file, or this one (first)
    same_as = same if same != file.name else None
    check = pickup.check_staged(settings, contract, file.name)
    result.pickup_seconds += check.seconds
    result.changes.append(
        Arrival(
            file.name,
            "staged",
            done.size,
            file.mtime,
            sha256=done.sha256,
            staged_path=done.staged_path,
            same_content_as=same_as,
            pickup=check.to_json(),
        )
    )
    result.changes.append(ForgetWaiting((file.name,)))
    result.files.append(ListedFile(file.name, "staged", None, done.sha256, same_as))


def write_all(con: Any, results: list[ClientSyncResult]) -> dict[str, str]:
    """Each client's changes in its own transaction; returns the clients whose write failed (id -> error).

    One client's bad data (or a row another writer added since the read) fails that client alone."""
    failed: dict[str, str] = {}
    for result in results:
        try:
            write_changes(con, result)
        except Exception as exc:  # reported per client; the others still get their rows
            failed[result.client] = f"ledger write failed: {type(exc).__name__}: {exc}"
    return failed


def write_changes(con: Any, result: ClientSyncResult) -> None:
    """Apply one client's ledger changes in one transaction (all of them or none); the result documents of
    the files received or ignored become due for writing."""
    client, now = result.client, result.now
    arrivals: list[dict[str, Any]] = []
    forget: list[str] = []  # a name is forgotten or waiting in one pass, never both: order does not matter
    results: list[str] = []
    with store.transaction(con):
        for change in result.changes:
            match change:
                case Waiting(name, size, mtime):
                    store.record_waiting(con, client, name, size, mtime, now)
                case Ignored(name, size, mtime, reason):
                    if store.record_ignored(con, client, name, size, mtime, now, reason):
                        results.append(name)
                case Arrival():
                    arrivals.append(asdict(change))
                    results.append(change.name)
                case ForgetWaiting(names):
                    forget.extend(names)
                case SamplesWritten(digest):
                    store.record_samples(con, client, digest, now)
        store.record_arrivals(con, client, now, arrivals)
        store.forget_waiting(con, client, forget)
        store.mark_results(con, client, results, now)
