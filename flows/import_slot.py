"""The `import-slot` flow: the daily imports of every client whose import time falls in one slot.

A slot is one (timezone, import time); the deployment generator gives each slot (split into shards
of at most SHARD_SIZE clients) its own deployment with a cron schedule at that local time. The run
imports each client as a `daily-import` subflow (`import-northwind-2026-11-28`, tagged
`client:northwind`), several at a time in threads: one process pays Prefect's start-up once for the
whole slot instead of once per client (~4-6 s a process-worker run), which is what makes 1,000
clients in the same minute fit in 15 minutes. Each subflow parses without the store lock and takes
it only around its transactions. A failing client fails alone; the slot run then ends Failed naming it.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.runtime import flow_run
from prefect.states import Failed, State

from flows.daily_import import daily_import

THREADS = 8  # concurrent client subflows: mostly waiting on the API and the store lock, little CPU


def _scheduled() -> datetime:
    when = flow_run.scheduled_start_time or datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _run_name() -> str:
    """`import-slot-0600-europe-amsterdam-1-2026-11-28` (the slot's name and the run's UTC date)."""
    return f"import-slot-{flow_run.parameters['slot']}-{_scheduled():%Y-%m-%d}"


def _import_one(client: str, scheduled_for: datetime) -> State[Any]:
    with tags(f"client:{client}"):
        state: State[Any] = daily_import(client, scheduled_for=scheduled_for, return_state=True)
    return state


@flow(name="import-slot", flow_run_name=_run_name)
def import_slot(slot: str, clients: list[str], threads: int = THREADS) -> Any:
    """Run `daily-import` for each client of the slot at the slot's scheduled time."""
    scheduled_for = _scheduled()
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix=f"slot-{slot}") as pool:
        futures = {
            client: pool.submit(contextvars.copy_context().run, _import_one, client, scheduled_for)
            for client in clients
        }
        states = {client: future.result() for client, future in futures.items()}
    failed = {client: state.message or state.name for client, state in states.items() if not state.is_completed()}
    summary = {"slot": slot, "scheduled_for": scheduled_for.isoformat(), "clients": len(clients), "failed": failed}
    if failed:
        for client, message in failed.items():
            get_run_logger().error("client %s: %s", client, message)
        return Failed(message=f"{len(failed)} of {len(clients)} client(s) failed: {', '.join(failed)}", data=summary)
    return summary
