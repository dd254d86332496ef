"""What the flows share: the run's reference time, the contracts, the run's tags, the ops overview.

Every flow run is named for a person (`sync-2026-12-01-0605`, `import-northwind-2026-12-01`, …: each
flow's `run_name`) and tagged `kind:<sync|import|backfill|retention>`, plus `client:<id>` when it
concerns one client, however it was started: a deployment, the CLI or the demo. The flow tags its
own run (`tag_run`), so no caller can forget; a slot run concerns many clients and is not tagged per
client (its tasks are; see deployments/generate.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from prefect import task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.retrying import retry_if_transient
from tasks import overview, store
from tasks.resources import Resources


def thread_runner(threads: int) -> TaskRunner[PrefectFuture[Any]]:
    """A flow's task runner of `threads` threads (cast: TaskRunner is invariant in its future type, so
    Prefect's own runner does not match its annotation)."""
    return cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=threads))


def scheduled_time(scheduled_for: datetime | None = None) -> datetime:
    """The run's reference time: the parameter, else the run's scheduled start, else now (UTC if naive)."""
    when = scheduled_for or flow_run.scheduled_start_time or datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def run_tags(kind: str, client: str | None = None) -> list[str]:
    """`kind:<kind>`, and `client:<id>` for a run that concerns one client: what ops filter runs by."""
    return [f"kind:{kind}", *([f"client:{client}"] if client else [])]


def tag_run(kind: str, client: str | None = None) -> None:
    """Add the running flow run's `run_tags` it lacks: one API call, none when its deployment or caller set them."""
    current = list(flow_run.tags)
    missing = [tag for tag in run_tags(kind, client) if tag not in current]
    if missing:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as api:
            api.update_flow_run(UUID(flow_run.id), tags=[*current, *missing])


def failed_imports(
    states: Mapping[str, State[Any]], kind: str, cutoffs: Mapping[str, datetime | None], started_at: datetime
) -> list[store.Run]:
    """The runs (`store.record_failed_runs`) of the client imports that did not complete.

    An import task's run id is its task run's id, so a run the import recorded itself keeps its row."""
    return [
        store.Run(str(state.state_details.task_run_id), client, kind, cutoffs.get(client), started_at)
        for client, state in states.items()
        if not state.is_completed() and state.state_details.task_run_id is not None
    ]


@task(
    name="update-overview", cache_policy=NONE, retries=2, retry_delay_seconds=5, retry_condition_fn=retry_if_transient
)
def update_overview_task(res: Resources, failed_runs: list[store.Run] | None = None) -> None:
    """Record the imports that failed, then publish the ops overview of every client (two API calls)."""
    from prefect.settings import PREFECT_UI_URL

    ui = (PREFECT_UI_URL.value() or "").rstrip("/")
    rows, markdown = overview.build_overview(res.settings, res.contracts, datetime.now(UTC), ui, failed_runs or [])
    overview.publish_overview(rows, markdown)
