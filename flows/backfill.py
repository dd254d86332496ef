"""The `backfill` flow: import a client's named files now instead of at its next import time.

Files not yet in the ledger are synced first (only those names). Before anything is imported every
name is checked; the run fails with one message listing every refusal: an unknown client, a name
already imported or rejected (the name rule holds forever: rename the file), a name not on the
server, a file still being uploaded or with an extension the import does not read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from flows.daily_import import import_and_overview
from flows.retrying import retry_unless
from flows.shared import current_contracts, tag_run
from schemas.contract import Contract
from tasks import alerts, report, sftp, store, sync
from tasks.settings import load_settings


class BackfillRefused(Exception):
    """The backfill cannot run as asked; the message says why, name by name."""


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "an earlier run"


def refusal(name: str, entry: dict[str, Any]) -> str | None:
    """Why a name already in the ledger cannot be backfilled (None when it is staged and due)."""
    if entry["purged_at"] is not None or entry["status"] in ("imported", "rejected"):
        verb = entry["status"] if entry["status"] in ("imported", "rejected") else "received"
        when = entry["imported_at"] if verb != "received" else entry["received_at"]
        return f"{name} was already {verb} on {_when(when)}; the name rule holds: rename the file and upload it again"
    return None


def _contract(client: str) -> Contract:
    contracts = current_contracts()
    if client not in contracts:
        raise BackfillRefused(f"unknown client {client!r}; known clients: {', '.join(sorted(contracts)) or 'none'}")
    return contracts[client]


@task(
    name="backfill-check",
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=[5, 20],
    retry_condition_fn=retry_unless(BackfillRefused, sftp.SftpConfigError, sftp.HostKeyRejected),
)
def check_and_sync(client: str, files: list[str]) -> list[str]:
    """Refuse what cannot be imported; sync the named files not yet staged; the names to import, oldest first."""
    settings = load_settings()
    contract = _contract(client)
    names = list(dict.fromkeys(files))
    if not names:
        raise BackfillRefused("no file named: pass at least one --file")
    with store.open_store(settings.db_path, read_only=True) as con:  # a reader needs no writer lock
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
    with store.open_store(settings.db_path, read_only=True) as con:
        entries = store.ledger_entries(con, client, names)
    return sorted(names, key=lambda n: (entries[n]["received_at"], n))


def _run_name() -> str:
    """`backfill-northwind-2026-11-28-1432` (client and UTC start time)."""
    return f"backfill-{flow_run.parameters['client']}-{datetime.now(UTC):%Y-%m-%d-%H%M}"


@flow(name="backfill", flow_run_name=_run_name)
def backfill(client: str, files: list[str]) -> dict[str, Any]:
    """Import the named files of a client now; refuses (Failed, with the reasons) rather than half-doing it."""
    tag_run("backfill", client)
    started_at = datetime.now(UTC)
    names = check_and_sync(client, files)
    contract = _contract(client)
    progress = report.start_progress(client, len(names))
    result = import_and_overview(contract, started_at, names, "backfill", None, started_at, progress)
    get_run_logger().info("backfill of %s: %s", client, result.totals)
    return {
        "client": client,
        "run_id": result.run_id,
        "files": [o.as_dict() for o in result.outcomes],
        "totals": result.totals,
    }
