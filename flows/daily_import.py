"""The `daily-import` flow (one client) and the pieces it shares with `import-slot` (many clients).

A client's import is ONE task, `import-<client>-<local date>` tagged `client:<id>`: it parses the
client's files in received order with no hold on the store, then takes the store lock once and
commits each file in its own transaction on one connection (the merge rule needs the received
order: the latest non-empty value wins), records the run and reads the client's upload report;
the artifacts are published after the lock is released. A file that fails (an error, not a
rejection) stops the client: the later files stay staged for the rerun, so the order still holds."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count
from typing import Any, cast
from uuid import UUID

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run, task_run
from prefect.states import State
from prefect.tasks import Task

from flows.client_results import record_written
from flows.retrying import retry_if_transient
from flows.shared import failed_imports, scheduled_time, tag_run, update_overview_task
from schemas.contract import Contract
from tasks import alerts, importer, report, results, store
from tasks.importer import ClientImport, FileImport
from tasks.resources import Resources, from_environment


def run_name() -> str:
    """`import-<client>-<local date of the run>`, e.g. import-northwind-2026-11-28."""
    parameters = flow_run.parameters
    client = parameters["client"]
    when = scheduled_time(parameters.get("scheduled_for"))
    with suppress(Exception):  # the name must not fail the run; the flow reports a bad client itself
        when = when.astimezone(from_environment().contract(client).zone)
    return f"import-{client}-{when.date().isoformat()}"


@task(name="files-due", cache_policy=NONE, retries=2, retry_delay_seconds=2, retry_condition_fn=retry_if_transient)
def files_due_task(res: Resources, cutoffs: Mapping[str, datetime | None]) -> dict[str, list[str]]:
    """Each client's staged files due by its cut-off, oldest first, in one read-only connection.

    No store lock: DuckDB refuses a read-only open while another process writes, and
    `open_store` retries until the writer lets go."""
    with res.settings.store.read(store.WAIT_FOR_WRITER_SECONDS) as con:
        return {client: store.staged_files(con, client, cutoff) for client, cutoff in cutoffs.items()}


@task(name="import-client", cache_policy=NONE, retries=2, retry_delay_seconds=5, retry_condition_fn=retry_if_transient)
def import_client_task(
    res: Resources,
    contract: Contract,
    names: list[str],
    kind: str,
    cutoff: datetime | None,
    started_at: datetime,
    progress: UUID | None = None,
) -> ClientImport:
    """One client's import (`importer.import_client`: one hold of the store lock), then its artifacts and
    its result documents (written into its folder, `written`; the flow records them).

    `progress`: a progress artifact moved as each file commits (the single-client flow's). A file's
    alerts go out as it commits: exactly once, even when a retry finds it committed."""
    done = count(1)
    settings = res.settings

    def moved(outcome: FileImport) -> None:
        alerts.emit(alerts.import_alerts(outcome, settings.alert_rejected_share))
        if progress is not None:
            report.update_progress(progress, contract.id, next(done), len(names))

    result = importer.import_client(
        settings,
        contract,
        names,
        run_id=str(task_run.id),
        kind=kind,
        cutoff=cutoff,
        started_at=started_at,
        on_commit=moved,
    )
    report.publish_reports(result.report)
    return replace(result, written=results.publish(settings, contract, result.documents))  # lock released


def client_import(contract: Contract, scheduled: datetime) -> Task[..., ClientImport]:
    """The client's import task named `import-<client>-<local date>` and tagged `client:<id>`."""
    day = scheduled.astimezone(contract.zone).date().isoformat()
    return import_client_task.with_options(task_run_name=f"import-{contract.id}-{day}", tags={f"client:{contract.id}"})


def import_and_overview(
    res: Resources,
    contract: Contract,
    scheduled: datetime,
    names: list[str],
    kind: str,
    cutoff: datetime | None,
    started_at: datetime,
    progress: UUID,
) -> ClientImport:
    """One client's import task, then the ops overview (recording the import when it failed).

    Returns the import's result; a failed import raises its error after the overview shows it."""
    run = client_import(contract, scheduled)
    state = cast(
        "State[ClientImport]", run(res, contract, names, kind, cutoff, started_at, progress, return_state=True)
    )
    if state.is_completed():
        record_written(res, state.result().written)
    failed = failed_imports({contract.id: state}, kind, {contract.id: cutoff}, started_at)
    update_overview_task.submit(res, failed).wait()
    if not state.is_completed():
        alerts.emit([alerts.run_failed(contract.id, kind, state.message or "failed")])
    return state.result()


@flow(name="daily-import", flow_run_name=run_name)
def daily_import(client: str, scheduled_for: datetime | None = None, now: bool = False) -> dict[str, Any]:
    """Import the client's files received before its cut-off (`now`: everything received so far)."""
    tag_run("import", client)
    started_at = datetime.now(UTC)
    res = from_environment()
    contract = res.contract(client)
    scheduled = scheduled_time(scheduled_for)
    cutoff = None if now else contract.last_cutoff(scheduled)  # the client's last import time by then
    due = files_due_task(res, {client: cutoff})[client]
    progress = report.start_progress(client, len(due))
    result = import_and_overview(res, contract, scheduled, due, "daily", cutoff, started_at, progress)
    return {
        "client": client,
        "run_id": result.run_id,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "files": [outcome.as_dict() for outcome in result.outcomes],
        "totals": result.totals,
    }
