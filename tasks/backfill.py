"""Backfill's rules (plain functions): which named files of a client can be imported now, and why not.

Before anything is imported every name is checked, and every refusal is given at once: an unknown
client, a name already imported or rejected (the name rule holds forever: rename the file), a name
not on the server, a file still being uploaded or with an extension the import does not read.
Files not yet in the ledger are synced first (only those names).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.contract import Contract
from tasks import alerts, sftp, store, sync
from tasks.errors import ClientDataError
from tasks.settings import Settings


class BackfillRefused(ClientDataError):
    """The backfill cannot run as asked; the message says why, name by name."""


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "an earlier run"


def refusal(name: str, entry: dict[str, Any]) -> str | None:
    """Why a name already in the ledger cannot be backfilled (None when it is staged and due, or was
    closed by a backfill that did not complete: that backfill is being run again, and its import skips
    what the killed run committed)."""
    closed = (store.FileStatus.IMPORTED, store.FileStatus.REJECTED)
    rerun = entry["run_kind"] == "backfill" and entry["run_state"] != "completed"
    if entry["purged_at"] is not None or (entry["status"] in closed and not rerun):
        verb = entry["status"] if entry["status"] in closed else "received"
        when = entry["imported_at"] if verb != "received" else entry["received_at"]
        return f"{name} was already {verb} on {_when(when)}; the name rule holds: rename the file and upload it again"
    return None


def contract_of(contracts: dict[str, Contract], client: str) -> Contract:
    """The client's contract; BackfillRefused naming the known clients when there is none."""
    if client not in contracts:
        raise BackfillRefused(f"unknown client {client!r}; known clients: {', '.join(sorted(contracts)) or 'none'}")
    return contracts[client]


def check_and_sync(settings: Settings, contract: Contract, files: list[str]) -> list[str]:
    """Refuse what cannot be imported; sync the named files not yet staged; the names to import, oldest first."""
    client = contract.id
    names = list(dict.fromkeys(files))
    if not names:
        raise BackfillRefused("no file named: pass at least one --file")
    with settings.store.read() as con:  # a reader needs no writer lock
        entries = store.ledger_entries(con, client, names)
    problems = [p for name in names if name in entries for p in [refusal(name, entries[name])] if p]
    missing = {name for name in names if name not in entries}
    if missing and not problems:
        with sftp.connect(settings.sftp) as connection:
            result = sync.sync_client(connection, settings, contract, datetime.now(UTC), only_names=missing)
        alerts.emit(alerts.sync_alerts(result))
        outcomes = {f.name: f for f in result.files}
        for name in sorted(missing):
            outcome = outcomes.get(name)
            if outcome is None:
                problems.append(f"{name} is not in {client}'s folder on the SFTP server")
            elif outcome.outcome == "waiting":
                problems.append(f"{name} is still being uploaded (size or time changing); try again in a few minutes")
            elif outcome.outcome != "staged":
                problems.append(f"{name} was {outcome.outcome}: {outcome.reason}")
    if problems:
        raise BackfillRefused("; ".join(problems))
    with settings.store.read() as con:
        entries = store.ledger_entries(con, client, names)
    return sorted(names, key=lambda n: (entries[n]["received_at"], n))
