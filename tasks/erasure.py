"""Erasing one person from a client's data on request (GDPR art. 17): `sftp-import erase`.

Where a person is held, and what happens there:
- the client's contacts: the contact of that email (compared trimmed, case-insensitively) is deleted;
- row errors: those of the person's lines in the files whose staged copy is still there (found by
  reading them), and any whose message quotes the address;
- staged copies: a plain CSV is rewritten without the person's records, every other byte kept, and
  the ledger's sha256 follows (the import still takes it); any other form (a workbook, XML, a
  compressed or encrypted upload, an unreadable file that holds the address) is deleted, and a file
  not imported yet is rejected with the reason;
- the store's file: DuckDB keeps deleted values in free blocks, so the file is rewritten afterwards.
The erasure is logged (who, when, how many) without the address. Not reached: the client's own SFTP
folder (its uploads and result documents; retention deletes them) and backups. After a crash part-way,
run the command again: a second run finds what the first left.
"""

from __future__ import annotations

import getpass
import hashlib
import posixpath
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.contract import Contract
from tasks import formats, store
from tasks.errors import FileRejected
from tasks.formats import RawTable
from tasks.formats.csv import without_records
from tasks.formats.pgp import PgpKey
from tasks.merge import email_key
from tasks.settings import Settings
from tasks.staging import staging_fs
from tasks.temporary_names import TMP_DIR

PENDING_REASON = (
    "the file held a person whose data was erased on request (GDPR art. 17) before it was imported; "
    "upload the other contacts again under a new name"
)


@dataclass(frozen=True)
class StagedCopy:
    """A staged copy that holds the person: their records' lines, and its bytes without them (None: delete it)."""

    name: str
    url: str
    pending: bool  # not imported yet
    lines: list[int]
    rewritten: bytes | None


@dataclass
class Erasure:
    """What one erasure removed from a client's data."""

    client: str
    contacts: int = 0
    row_errors: int = 0
    rewritten: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "contacts": self.contacts,
            "row_errors": self.row_errors,
            "files_rewritten": len(self.rewritten),
            "files_deleted": len(self.deleted),
        }


def operator() -> str:
    """Who runs the command, as the log records it: `user@host`."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def erase(settings: Settings, contract: Contract, address: str, by: str, now: datetime) -> Erasure:
    """Erase the person of `address` from the client's contacts, row errors and staged copies, log it,
    and compact the store so the deleted bytes are gone from its files."""
    key = email_key(address)
    if "@" not in key:
        raise ValueError("not an email address")
    result = Erasure(contract.id)
    with settings.store.write(client=contract.id) as con:
        copies = [c for row in store.erasable_files(con, contract.id) if (c := _holding(settings, contract, row, key))]
        result.rewritten = [c.name for c in copies if c.rewritten is not None]
        result.deleted = [c.name for c in copies if c.rewritten is None]
        with store.transaction(con):
            result.contacts = store.erase_contact(con, contract.id, key)
            lines = {c.name: c.lines for c in copies if c.lines}
            result.row_errors = store.erase_row_errors(con, contract.id, lines, key)
            for copy in copies:
                if copy.rewritten is not None:
                    store.record_rewritten(con, contract.id, copy.name, hashlib.sha256(copy.rewritten).hexdigest())
                elif copy.pending:
                    store.reject_erased(con, contract.id, copy.name, PENDING_REASON)
            store.record_erasure(con, contract.id, by, now, result.counts())
        for copy in copies:  # after the commit: a crash in between leaves copies a second run finds
            _replace(settings, contract.id, copy)
    if isinstance(settings.store, store.DuckDBStore):  # a file to rewrite from its live data
        store.compact_duckdb(settings.store.path)
    else:
        with settings.store.write(client=contract.id) as con:
            store.vacuum_erased(con, contract.id)
    return result


def _holding(settings: Settings, contract: Contract, row: dict[str, Any], key: str) -> StagedCopy | None:
    """The staged copy of a ledger row if it holds the person (None when it does not, or is gone)."""
    staging, local = staging_fs(row["staged_path"])
    try:
        data = staging.cat_file(local)
    except FileNotFoundError:
        return None
    pending = row["status"] == "staged"
    try:
        table = formats.read_bytes(row["name"], data, contract, PgpKey(settings.pgp_key_file, settings.pgp_passphrase))
    except FileRejected:  # unreadable: only its bytes can tell
        return StagedCopy(row["name"], row["staged_path"], pending, [], None) if key.encode() in data.lower() else None
    lines = _lines_of(table, contract, key)
    if not lines:
        return None
    rewritten = None
    if table.format == "csv" and not table.unwrapped and table.encoding and table.delimiter:
        text = without_records(data.decode(table.encoding), table.delimiter, set(lines))
        rewritten = text.encode(table.encoding)
    return StagedCopy(row["name"], row["staged_path"], pending, lines, rewritten)


def _lines_of(table: RawTable, contract: Contract, key: str) -> list[int]:
    """The source lines of the table's records with that email key."""
    email = contract.email_field
    names = [h.strip().lower() for h in table.header]
    wanted = {email.name.strip().lower(), email.id.lower()}
    column = next((i for i, name in enumerate(names) if name in wanted), None)
    if column is None:
        return []
    return [line for cells, line in zip(table.rows, table.lines, strict=True) if email_key(cells[column]) == key]


def _replace(settings: Settings, client: str, copy: StagedCopy) -> None:
    """Put the rewritten bytes in place of the staged copy (via a temporary name), or delete the copy."""
    staging, local = staging_fs(copy.url)
    if copy.rewritten is None:
        if staging.exists(local):
            staging.rm_file(local)
        return
    _, base = staging_fs(settings.staging_url)
    tmp = posixpath.join(base, TMP_DIR, client, f"{uuid.uuid4().hex}.part")  # swept by the sync if left
    staging.makedirs(posixpath.dirname(tmp), exist_ok=True)
    staging.pipe_file(tmp, copy.rewritten)
    staging.mv(tmp, local)
