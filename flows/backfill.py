"""The `backfill` flow: import a client's named files now instead of at its next import time.

The rules are `tasks/backfill.py`'s; the run fails with one message listing every refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from flows.daily_import import import_and_overview
from flows.retrying import retry_if_transient
from flows.shared import tag_run
from schemas.contract import Contract
from tasks import backfill as backfill_rules
from tasks import report
from tasks.resources import Resources, from_environment


@task(
    name="backfill-check",
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=[5, 20],
    retry_condition_fn=retry_if_transient,
)
def check_and_sync_task(res: Resources, contract: Contract, files: list[str]) -> list[str]:
    """`tasks.backfill.check_and_sync`: the names to import, oldest first, or BackfillRefused with every reason."""
    return backfill_rules.check_and_sync(res.settings, contract, files)


def _run_name() -> str:
    """`backfill-northwind-2026-11-28-1432` (client and UTC start time)."""
    return f"backfill-{flow_run.parameters['client']}-{datetime.now(UTC):%Y-%m-%d-%H%M}"


@flow(name="backfill", flow_run_name=_run_name)
def backfill(client: str, files: list[str]) -> dict[str, Any]:
    """Import the named files of a client now; refuses (Failed, with the reasons) rather than half-doing it."""
    tag_run("backfill", client)
    started_at = datetime.now(UTC)
    res = from_environment()
    contract = backfill_rules.contract_of(res.contracts, client)  # an unknown client: refused before any task
    names = check_and_sync_task(res, contract, files)
    progress = report.start_progress(client, len(names))
    result = import_and_overview(res, contract, started_at, names, "backfill", None, started_at, progress)
    get_run_logger().info("backfill of %s: %s", client, result.totals)
    return {
        "client": client,
        "run_id": result.run_id,
        "files": [o.as_dict() for o in result.outcomes],
        "totals": result.totals,
    }
