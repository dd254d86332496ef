"""Importing a client's staged files, each exactly once: plain functions the flows and the CLI share.

A file is read and parsed with no hold on the store (several workers can parse at once); then one
transaction merges its rows into the contacts and writes its ledger status, row errors and
statistics together. The
transaction first checks, under the write connection, that the file is still `staged`: a crash
or a retry at any point (before, during or after the commit) imports each file exactly once."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from schemas.contract import Contract
from tasks import store
from tasks.errors import FileRejected
from tasks.formats.pgp import PgpKey
from tasks.report import Reports, read_reports
from tasks.results import Document, pending_documents
from tasks.settings import Settings
from tasks.staging import staged_url, staging_fs

if TYPE_CHECKING:
    from tasks.validate import ParsedFile

log = logging.getLogger(__name__)


class StagedCopyChanged(Exception):
    """The staged bytes differ from those the sync received and hashed: never import them."""


@dataclass(frozen=True)
class FileImport:
    """What importing one file did. `status`: imported | rejected | skipped (closed before: nothing done)."""

    client: str
    name: str
    status: str
    reason: str | None = None
    format: str | None = None
    encoding: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    read_seconds: float = 0.0
    upsert_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-native, for flow results and artifacts."""
        return asdict(self)


@dataclass(frozen=True)
class PreparedFile:
    """A file read and checked, ready for its transaction: its valid rows, or the whole-file rejection."""

    name: str
    parsed: ParsedFile | None
    rejected: FileRejected | None
    read_seconds: float
    missing: bool = False  # the staged copy is gone (decided at commit: skipped if closed, else an error)
    sha256: str | None = None  # of the staged bytes read, checked against the ledger at commit


def prepare_file(settings: Settings, contract: Contract, name: str) -> PreparedFile:
    """Read the staged bytes, parse and validate them (no store access).

    The bytes are dropped once read into cells, before the cells are typed: 18 MB less while a 150,000-row
    file is typed."""
    # here: a run with no file to read never loads pandas and pandera
    from tasks.validate import gc_paused, read_file, type_rows

    started = time.perf_counter()
    staging, path = staging_fs(staged_url(settings.staging_url, contract.id, name))
    with staging.open(path, "rb") as handle:
        data = handle.read()
    digest = hashlib.sha256(data).hexdigest()
    try:
        with gc_paused():
            checked = read_file(
                name,
                data,
                contract,
                max_bytes=settings.max_file_bytes,
                warn_bytes=settings.warn_file_bytes,
                pgp=PgpKey(settings.pgp_key_file, settings.pgp_passphrase),
            )
            del data
            parsed = type_rows(checked)
    except FileRejected as exc:
        return PreparedFile(name, None, exc, time.perf_counter() - started, sha256=digest)
    return PreparedFile(name, parsed, None, time.perf_counter() - started, sha256=digest)


def prepare_files(settings: Settings, contract: Contract, names: list[str]) -> list[PreparedFile]:
    """`prepare_file` for each name, in order; a staged copy that is gone is marked `missing`.

    Whether a missing copy is an error (still staged) or nothing to do (closed before, then purged)
    is decided at commit time, under the write connection."""
    prepared = []
    for name in names:
        try:
            prepared.append(prepare_file(settings, contract, name))
        except FileNotFoundError:
            prepared.append(PreparedFile(name, None, None, 0.0, missing=True))
    return prepared


def _commit(con: Any, contract: Contract, prepared: PreparedFile, run_id: str) -> FileImport:
    """One transaction: the contacts upsert, the ledger status, the row errors and the statistics.

    Does nothing (status `skipped`) when the ledger no longer says `staged`; raises
    FileNotFoundError when the file is still staged but its staged copy is gone, and
    StagedCopyChanged when the staged bytes are not the ones the sync received."""
    client, name = contract.id, prepared.name
    now = datetime.now(UTC)
    with store.transaction(con):
        status, received_sha256 = store.file_status_and_hash(con, client, name)
        if status != store.FileStatus.STAGED:
            return FileImport(client, name, "skipped", reason=f"not staged: {status} before")
        if prepared.missing:
            raise FileNotFoundError(f"the staged copy of {client}/{name} is gone")
        if received_sha256 is not None and prepared.sha256 != received_sha256:
            raise StagedCopyChanged(
                f"the staged copy of {client}/{name} is not the file received (sha256 {received_sha256[:12]}…): "
                "not imported; ask the client to upload it again under a new name"
            )
        started = time.perf_counter()
        parsed = prepared.parsed
        if parsed is None:
            assert prepared.rejected is not None
            outcome = FileImport(
                client,
                name,
                store.FileStatus.REJECTED,
                reason=prepared.rejected.message,
                read_seconds=prepared.read_seconds,
            )
            rejected = store.FileResult(
                client,
                name,
                store.FileStatus.REJECTED,
                run_id,
                now,
                reason=outcome.reason,
                code=prepared.rejected.code,
                read_seconds=outcome.read_seconds,
            )
            store.record_file_result(con, rejected)
            store.mark_results(con, client, [name], now)
            return outcome
        merged = store.upsert_contacts(con, contract, parsed.rows, name, now)
        store.record_row_errors(con, client, name, parsed.errors)
        stats = {
            "rows_read": parsed.rows_read,
            "rows_imported": len(parsed.rows),
            "rows_rejected": parsed.rows_read - len(parsed.rows),
            **asdict(merged),
        }
        outcome = FileImport(
            client,
            name,
            store.FileStatus.IMPORTED,
            format=parsed.format,
            encoding=parsed.encoding,
            stats=stats,
            read_seconds=prepared.read_seconds,
            upsert_seconds=time.perf_counter() - started,
        )
        imported = store.FileResult(
            client,
            name,
            store.FileStatus.IMPORTED,
            run_id,
            now,
            format=parsed.format,
            encoding=parsed.encoding,
            delimiter=parsed.delimiter,
            warnings=tuple(parsed.warnings),
            stats=stats,
            read_seconds=outcome.read_seconds,
            upsert_seconds=outcome.upsert_seconds,
        )
        store.record_file_result(con, imported)
        store.mark_results(con, client, [name], now)
    log.info("%s/%s: %s %s", client, name, outcome.status, stats)
    return outcome


def commit_files(
    con: Any,
    contract: Contract,
    prepared: list[PreparedFile],
    run_id: str,
    on_commit: Callable[[FileImport], None] | None = None,
) -> list[FileImport]:
    """Commit prepared files in order on one write connection, each in its own transaction.

    Each file is taken off `prepared` as its transaction begins, so its rows are freed once committed: the
    next file's merge, the run's close and the store's checkpoint never hold them (16 MB of a 56,000-row
    file's peak). A file that fails stops here: the later files stay staged, so a rerun keeps the received
    order."""
    outcomes = []
    while prepared:
        outcomes.append(_commit(con, contract, prepared.pop(0), run_id))
        if on_commit is not None:
            on_commit(outcomes[-1])
    return outcomes


@dataclass(frozen=True)
class ClientImport:
    """One client's import run: its files' outcomes, the run's totals, its upload report and its due result
    documents read after, and the documents written to the client's folder (`written`, by the caller)."""

    run_id: str
    outcomes: list[FileImport]
    totals: dict[str, int]
    report: Reports
    documents: list[Document] = field(default_factory=list)
    written: list[store.ResultKey] = field(default_factory=list)


def import_client(
    settings: Settings,
    contract: Contract,
    names: list[str],
    *,
    run_id: str,
    kind: str,
    cutoff: datetime | None,
    started_at: datetime,
    on_commit: Callable[[FileImport], None] | None = None,
) -> ClientImport:
    """Parse the client's files (no lock), then open the store for writing ONCE for the whole client.

    On that one connection, holding the client's write lock (DuckDB: the store's writer lock;
    PostgreSQL: the client's advisory lock) for the whole run: the run's row (`running`; an earlier run
    of the client still `running` crashed: it is closed from the ledger), each file in its own
    transaction (`commit_files`), the run's totals and state (also when a file failed) and the read
    of the client's upload report and due result documents. One open per client, not per file."""
    prepared = prepare_files(settings, contract, names)
    run = store.Run(run_id, contract.id, kind, cutoff, started_at)
    with settings.store.write(client=contract.id) as con:
        with store.transaction(con):
            for crashed in store.close_crashed_runs(con, contract.id, datetime.now(UTC), run_id):
                log.warning("%s: run %s died running; closed from the ledger", contract.id, crashed)
            store.start_run(con, run)
        try:
            outcomes = commit_files(con, contract, prepared, run_id, on_commit)
        except BaseException:
            close_run(con, run, "failed")
            raise
        totals = close_run(con, run, "completed")
        upload_report = read_reports(con, {contract.id: contract}, datetime.now(UTC))
        documents = pending_documents(con, {contract.id: contract}, settings.retention_days).get(contract.id, [])
    return ClientImport(run_id, outcomes, totals, upload_report, documents)


def close_run(con: Any, run: store.Run, state: str) -> dict[str, int]:
    """Store a run's end (state, totals summed from the ledger rows it closed) and return the totals."""
    with store.transaction(con):
        return store.record_run(con, run, finished_at=datetime.now(UTC), state=state)
