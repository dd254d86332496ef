"""The `daily-import` flow: one client's files received before its cut-off, imported oldest first.

Files are imported one after the other, in received order, because the merge rule depends on it
(the latest non-empty value wins). Each file task parses with no hold on the store and takes the
store's global concurrency limit only around its transaction, so other clients' runs (on other
workers) parse while this one writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import TaskRun
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run
from prefect.states import State
from prefect.tasks import Task

from deployments.limits import STORE_LIMIT
from schemas.contract import Contract, load_contracts
from tasks import importer, report, store
from tasks.importer import FileOutcome
from tasks.settings import load_settings


@contextmanager
def store_lock() -> Iterator[None]:
    """The store's global concurrency slot (strict: a missing limit is an error, not a free pass)."""
    with concurrency(STORE_LIMIT, occupy=1, strict=True):
        yield


def _retry_on_io(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a task only when it failed on I/O (staging unreachable), never on a bug or bad data."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


@lru_cache(maxsize=4)
def _contracts(directory: Path, signature: tuple[tuple[str, int], ...]) -> dict[str, Contract]:
    """The contracts of a folder, parsed once per change of its files (name and mtime)."""
    return load_contracts(directory)


def _contract(client: str) -> Contract:
    """A client's contract; cached, since a slot runs many clients' imports in one process."""
    directory = load_settings().clients_dir
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    contracts = _contracts(directory, tuple((f.name, f.stat().st_mtime_ns) for f in files))
    if client not in contracts:
        raise ValueError(f"unknown client {client!r}")
    return contracts[client]


def _scheduled(scheduled_for: datetime | None) -> datetime:
    """The run's reference time: the parameter, else the run's scheduled start, else now (UTC if naive)."""
    when = scheduled_for or flow_run.scheduled_start_time or datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def import_cutoff(contract: Contract, scheduled_for: datetime | None, now: bool) -> datetime | None:
    """The cut-off of a run: the client's most recent import time at or before the scheduled time."""
    return None if now else contract.last_cutoff(_scheduled(scheduled_for))


def run_name() -> str:
    """`import-<client>-<local date of the run>`, e.g. import-northwind-2026-11-28."""
    parameters = flow_run.parameters
    client = parameters["client"]
    when = _scheduled(parameters.get("scheduled_for"))
    with suppress(Exception):  # the name must not fail the run; the flow reports a bad client itself
        when = when.astimezone(_contract(client).zone)
    return f"import-{client}-{when.date().isoformat()}"


@task(name="files-due", cache_policy=NONE, retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_on_io)
def files_due_task(client: str, cutoff: datetime | None) -> list[str]:
    """The client's staged files due for this run, oldest first."""
    with store_lock(), store.open_store(load_settings().db_path) as con:
        return importer.files_due(con, client, cutoff)


@task(
    name="import-file",
    task_run_name="import-{name}",
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=_retry_on_io,
)
def import_file_task(client: str, name: str, run_id: str) -> FileOutcome:
    """Parse one file, then commit it in one transaction under the store limit."""
    return importer.import_file(load_settings(), _contract(client), name, run_id, store_lock=store_lock)


@task(name="record-run", cache_policy=NONE, retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_on_io)
def record_run_task(
    run_id: str, client: str, kind: str, cutoff: datetime | None, started_at: datetime
) -> dict[str, int]:
    """The run's totals in the `runs` table."""
    return importer.record_run(
        load_settings(),
        run_id=run_id,
        client=client,
        kind=kind,
        cutoff=cutoff,
        started_at=started_at,
        store_lock=store_lock,
    )


@flow(name="daily-import", flow_run_name=run_name)
def daily_import(client: str, scheduled_for: datetime | None = None, now: bool = False) -> dict[str, Any]:
    """Import the client's files received before its cut-off (`now`: everything received so far)."""
    started_at = datetime.now(UTC)
    cutoff = import_cutoff(_contract(client), scheduled_for, now)
    run_id = str(flow_run.id or f"local-{started_at.isoformat()}")
    outcomes: list[FileOutcome] = []
    try:
        due = files_due_task(client, cutoff)
        progress = report.start_progress(client, len(due))
        for done, name in enumerate(due, start=1):
            outcomes.append(import_file_task(client, name, run_id))
            report.update_progress(progress, client, done, len(due))
    finally:
        totals = record_run_task(run_id, client, "daily", cutoff, started_at)
    report.publish_uploads(load_settings(), {client: _contract(client)}, datetime.now(UTC), store_lock)
    return {
        "client": client,
        "run_id": run_id,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "files": [outcome.as_dict() for outcome in outcomes],
        "totals": totals,
    }
