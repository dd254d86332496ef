"""The `import-slot` flow: the daily imports of every client whose import time falls in one slot.

A slot is one (timezone, import time); the deployment generator gives each slot (split into shards
of at most SHARD_SIZE clients) its own deployment with a cron schedule at that local time. One
process pays Prefect's start-up once for the whole shard instead of once per client (~4-6 s a
process-worker run), and the run is kept coarse so 1,000 clients in the same minute fit in 15 minutes:
- ONE read-only read of every client's due files; a client with nothing due costs nothing more
  (no task, no lock, its upload artifacts unchanged; the slot summary lists it);
- per client with files, ONE task (`import-<client>-<local date>`, tagged `client:<id>`) that
  parses without the lock and then holds it once for all its commits; THREADS of them run at once,
  so one client parses while another commits;
- one progress artifact for the slot, moving as clients complete, and one summary artifact;
- each client's task writes its result documents into its folder; one write records them all.
A failing client fails alone; after all ran the slot run ends Failed naming the failed clients.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.states import Failed, State
from prefect.utilities.annotations import quote

from flows.client_results import record_written
from flows.daily_import import client_import, files_due_task
from flows.shared import failed_imports, scheduled_time, tag_run, thread_runner, update_overview_task
from tasks import alerts, report
from tasks.resources import from_environment

THREADS = 4  # clients at once: one commits (the lock is global) while the others parse
PROGRESS_EVERY_SECONDS = 2.0  # the slot's progress artifact moves at most this often


def _run_name() -> str:
    """`import-slot-0600-europe-amsterdam-1-2026-11-28` (the slot's name and the run's UTC date)."""
    return f"import-slot-{flow_run.parameters['slot']}-{scheduled_time():%Y-%m-%d}"


def _final_state(future: PrefectFuture[Any]) -> State[Any]:
    """The task's own final state, as its thread returned it. Not `future.state` alone: before `wait()` that
    reads the API, which records task states from events a moment later; under load a completed client
    read as Running or Pending, and the slot failed it (seen at the 3-worker peak: 700 of 1,000)."""
    future.wait()
    return future.state


@flow(name="import-slot", flow_run_name=_run_name, task_runner=thread_runner(THREADS))
def import_slot(slot: str, clients: list[str]) -> Any:
    """Import each client of the slot that has files due at the slot's scheduled time."""
    tag_run("import")
    scheduled, started_at = scheduled_time(), datetime.now(UTC)
    res = from_environment()
    contracts = res.contracts
    failed = {client: "unknown client: no contract" for client in clients if client not in contracts}
    cutoffs = {client: contracts[client].last_cutoff(scheduled) for client in clients if client in contracts}
    due = files_due_task(res, cutoffs)
    busy = [client for client in cutoffs if due[client]]
    futures = {
        # the contract quoted: Prefect does not walk its 64 values twice per call (0.4 s for 1,000 clients)
        client: client_import(contracts[client], scheduled).submit(
            res, quote(contracts[client]), due[client], "daily", cutoffs[client], started_at
        )
        for client in busy
    }
    progress = report.start_progress(f"slot-{slot}", len(busy), unit="client(s) done")
    moved = time.monotonic()
    for done, _ in enumerate(as_completed(list(futures.values())), start=1):
        if done == len(busy) or time.monotonic() - moved >= PROGRESS_EVERY_SECONDS:
            report.update_progress(progress, f"slot-{slot}", done, len(busy), unit="client(s) done")
            moved = time.monotonic()
    states = {client: _final_state(future) for client, future in futures.items()}
    failed |= {client: state.message or "failed" for client, state in states.items() if not state.is_completed()}
    imported = [client for client in busy if client not in failed]
    record_written(res, [key for client in imported for key in futures[client].result().written])
    update_overview_task.submit(res, failed_imports(states, "daily", cutoffs, started_at)).wait()
    idle = [client for client in cutoffs if not due[client]]
    report.publish_slot_summary(slot, report.slot_markdown(slot, f"{scheduled:%Y-%m-%d}", imported, idle, failed))
    summary = {"slot": slot, "clients": len(clients), "imported": len(imported), "idle": len(idle), "failed": failed}
    alerts.emit(alerts.run_failed(client, "daily", message) for client, message in failed.items())
    if failed:  # the run fails naming the failed clients, and keeps the slot's summary as its result
        for client, message in failed.items():
            get_run_logger().error("client %s: %s", client, message)
        return Failed(message=f"{len(failed)} of {len(clients)} client(s) failed: {', '.join(failed)}", data=summary)
    return summary
