"""Retention: delete clients' files older than `retention_days` from SFTP and staging (plain functions).

Whatever their status, files go once they are old: a ledger file by when we received it (its
staged copy, and its SFTP original), any other file in the client's folder (waiting, ignored
re-upload, leftover temporary) by its mtime. A file never received is left for the sync, whatever
its mtime (clients can preserve an old one). An upload's result documents (`results/<name>.*`) go
with it, and any file of the results folder by its mtime (a document rewritten after its upload was
purged, when a re-upload under its name was ignored). Every deletion is logged; ledger rows
stay with `purged_at` set, so the name rule still refuses the name; contacts are never touched.
A file received before the cut-off has an mtime before it too, so the SFTP side needs one rule.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from schemas.contract import Contract
from tasks import results, store
from tasks.settings import Settings
from tasks.sftp import Sftp
from tasks.staging import staging_fs
from tasks.sync import is_known_upload, is_temporary

log = logging.getLogger(__name__)

Location = Literal["sftp", "staging", "results"]  # results: the client's results folder, on SFTP too


@dataclass(frozen=True)
class Deletion:
    """One file to delete (or deleted) in one place; sha256/received_at when the ledger knows it."""

    name: str
    location: Location
    path: str
    sha256: str | None
    received_at: datetime | None

    @property
    def key(self) -> tuple[str, str]:
        return self.location, self.path

    def as_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "path": self.path,
            "sha256": self.sha256,
            "received_at": self.received_at,
        }


@dataclass
class ClientPurge:
    """A client's purge: the deletions planned (or done) and the ledger names it marks purged."""

    client: str
    before: datetime
    deletions: list[Deletion] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    missing: int = 0  # planned files already gone when deleted

    def summary(self) -> dict[str, Any]:
        """Counts per location (JSON-ready), for logs and the flow's result."""
        return {
            "client": self.client,
            "before": self.before.isoformat(),
            "sftp": sum(1 for d in self.deletions if d.location == "sftp"),
            "staging": sum(1 for d in self.deletions if d.location == "staging"),
            "results": sum(1 for d in self.deletions if d.location == "results"),
            "ledger_purged": len(self.purged),
            "already_gone": self.missing,
        }


def _staged_exists(path: str) -> bool:
    staging, local = staging_fs(path)
    return bool(staging.exists(local))


def plan_client(sftp: Sftp, settings: Settings, contract: Contract, now: datetime) -> ClientPurge:
    """What retention would delete for one client now; reads the store and the SFTP listing, changes nothing."""
    before = now - timedelta(days=settings.retention_days)
    try:
        remote = sftp.list_files(contract.directory)
    except FileNotFoundError:
        log.warning("%s: client folder not found on the SFTP server; only staging is purged", contract.id)
        remote = []
    with settings.store.read() as con:  # a reader needs no writer lock
        old = store.files_to_purge(con, contract.id, before)
        ledger = store.known_files(con, {contract.id: [f.name for f in remote]})[contract.id]
    plan = ClientPurge(contract.id, before, purged=[row["name"] for row in old])
    for file in remote:
        known = ledger.get(store.name_key(file.name))
        if file.mtime >= before or (known is None and not is_temporary(file.name)):
            continue  # recent, or not received yet (a client can preserve an old mtime): the sync takes it first
        if known is not None and known.received_at >= before:
            continue  # received recently under a preserved old mtime: its retention counts from then
        taken = known if is_known_upload(known, file) else None  # else a re-upload under a used name
        plan.deletions.append(
            Deletion(
                file.name,
                "sftp",
                sftp.path(contract.directory, file.name),
                taken.sha256 if taken else None,
                taken.received_at if taken else None,
            )
        )
    plan.deletions += _old_results(sftp, contract, old, before)
    for row in old:
        if row["staged_path"] and _staged_exists(row["staged_path"]):
            plan.deletions.append(
                Deletion(row["name"], "staging", row["staged_path"], row["sha256"], row["received_at"])
            )
    return plan


def _old_results(sftp: Sftp, contract: Contract, old: list[dict[str, Any]], before: datetime) -> list[Deletion]:
    """The results folder's files to delete: those of the uploads purged now, and any older than `before`."""
    try:
        listed = sftp.list_files(posixpath.join(contract.directory, results.FOLDER))
    except FileNotFoundError:
        return []  # nothing was ever written there
    purged = {results.result_stem(row["name"]): row for row in old}
    deletions = []
    for file in listed:
        upload = results.result_of(file.name)
        if file.mtime < before or upload in purged:
            row = purged.get(upload or "", {})
            path = sftp.path(contract.directory, posixpath.join(results.FOLDER, file.name))
            name = row.get("name", upload or file.name)  # a long upload name: its own, not its files' shortened stem
            deletions.append(Deletion(name, "results", path, row.get("sha256"), row.get("received_at")))
    return deletions


def _delete(sftp: Sftp, contract: Contract, deletion: Deletion) -> bool:
    """Delete one file; False when it was already gone."""
    try:
        if deletion.location == "sftp":
            sftp.remove(contract.directory, deletion.name)
        elif deletion.location == "results":
            sftp.remove_path(deletion.path)
        else:
            staging, local = staging_fs(deletion.path)
            staging.rm_file(local)
    except FileNotFoundError:
        return False
    return True


def purge_client(
    sftp: Sftp,
    settings: Settings,
    contract: Contract,
    now: datetime,
    *,
    dry_run: bool = False,
) -> ClientPurge:
    """Delete one client's old files: the intent is logged first, each deletion confirmed after.

    A purge killed between its deletions leaves planned rows: the next purge confirms those whose
    file is gone (the killed run deleted it), drops those whose file is there but no longer due,
    and deletes again what is still due. So the log holds every deletion, whatever was killed when."""
    plan = plan_client(sftp, settings, contract, now)
    if dry_run:
        return plan
    with settings.store.write(client=contract.id) as con, store.transaction(con):
        pending = [Deletion(**row) for row in store.pending_deletions(con, contract.id)]
        due, planned = {d.key for d in plan.deletions}, {p.key for p in pending}
        store.plan_deletions(con, contract.id, [d.as_row() for d in plan.deletions if d.key not in planned], now)
    done = [d for d in plan.deletions if _delete(sftp, contract, d)]
    left = [p for p in pending if p.key not in due]  # planned by a killed run, not due now
    recovered = [p for p in left if not _still_there(sftp, p)]
    cancelled = [d.key for d in plan.deletions if d not in done] + [p.key for p in left if p not in recovered]
    plan.missing = len(plan.deletions) - len(done)
    plan.deletions = done + recovered
    if plan.deletions or cancelled or plan.purged:
        with settings.store.write(client=contract.id) as con, store.transaction(con):
            store.record_purge(con, contract.id, [d.key for d in plan.deletions], cancelled, plan.purged, now)
            store.forget_results(con, contract.id, plan.purged)  # their documents went with them: none to write
    for deletion in plan.deletions:
        log.info("%s: deleted %s from %s", contract.id, deletion.name, deletion.location)
    return plan


def _still_there(sftp: Sftp, deletion: Deletion) -> bool:
    """Whether a planned deletion's file exists (a killed purge may have deleted it already)."""
    return _staged_exists(deletion.path) if deletion.location == "staging" else sftp.exists(deletion.path)
