"""The tasks that put result documents into the clients' folders, shared by the sync and the imports.

Documents are read while a flow holds the store (they are due in its outbox), written over SFTP
after it let go (one connection per client), and recorded written in one short write session for
all the clients of the run. Nothing here fails its flow: a document not written or not recorded is
written again by the next sync pass."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from flows.retrying import retry_if_transient
from schemas.contract import Contract
from tasks import results, store
from tasks.resources import Resources


@task(name="write-results", task_run_name="write-results-{contract.id}", cache_policy=NONE)
def write_results_task(res: Resources, contract: Contract, documents: list[results.Document]) -> list[store.ResultKey]:
    """Write one client's due documents into its `results/` folder; those written (never raises)."""
    return results.publish(res.settings, contract, documents)


@task(name="record-results", cache_policy=NONE, retries=2, retry_delay_seconds=5, retry_condition_fn=retry_if_transient)
def record_results_task(res: Resources, written: list[store.ResultKey]) -> None:
    """Mark the documents written, all clients in one transaction (a later change stays due)."""
    with res.settings.store.write() as con, store.transaction(con):
        store.record_results_written(con, written, datetime.now(UTC))


def record_written(res: Resources, written: list[store.ResultKey]) -> None:
    """`record_results_task` when anything was written; a failure is logged, the documents stay due."""
    if not written:
        return
    state = record_results_task(res, written, return_state=True)
    if not state.is_completed():
        get_run_logger().warning(
            "%d result document(s) written but not recorded: written again next sync", len(written)
        )
