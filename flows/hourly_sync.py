"""The `hourly-sync` flow: every client's SFTP folder into staging and the ledger, clients isolated.

One task per client (coarse: never per file). A client's task retries transient SFTP errors with
backoff; its failure is reported in the flow's result and never stops the other clients. The flow
ends Failed only when a client failed, after all clients ran.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.concurrency.sync import concurrency
from prefect.states import Failed, State
from prefect.tasks import Task

from deployments.limits import STORE_LIMIT
from schemas.contract import Contract, load_contracts
from tasks import report, sftp, sync
from tasks.settings import load_settings

# errors that another attempt a few seconds later cannot fix
PERMANENT_ERRORS = (sftp.SftpConfigError, sftp.HostKeyRejected, FileNotFoundError, PermissionError)


def _transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only errors worth retrying (dropped connections, timeouts), not a wrong key or a missing folder."""
    return not isinstance(state.data, PERMANENT_ERRORS)


def _store_lock() -> Any:
    """The global store limit, strict: a missing limit is an error rather than no limit."""
    return concurrency(STORE_LIMIT, occupy=1, strict=True)


@task(
    name="sync-client",
    task_run_name="sync-{contract.id}",
    retries=3,
    retry_delay_seconds=[2.0, 10.0, 30.0],
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,  # a sync must always look at the server
)
def sync_client_task(contract: Contract) -> dict[str, Any]:
    """Connect, sync one client (holding the store limit only around ledger writes), return its summary."""
    settings = load_settings()
    with sftp.connect(settings.sftp) as connection:
        result = sync.sync_client(connection, settings, contract, datetime.now(UTC), store_lock=_store_lock)
    summary = result.summary()
    get_run_logger().info("%s: %s", contract.id, summary)
    return summary


@flow(name="hourly-sync", log_prints=False)
def hourly_sync(client: str | None = None) -> Any:
    """Sync every client (or one); returns {"clients": {id: summary}, "failed": {id: error}}."""
    settings = load_settings()
    contracts = load_contracts(settings.clients_dir)
    if client is not None:
        if client not in contracts:
            raise ValueError(f"unknown client {client!r}; contracts: {', '.join(sorted(contracts))}")
        contracts = {client: contracts[client]}
    futures = {cid: sync_client_task.submit(contract) for cid, contract in sorted(contracts.items())}
    clients: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for cid, future in futures.items():
        future.wait()
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            failed[cid] = f"{type(outcome).__name__}: {outcome}"
        else:
            clients[cid] = outcome
    summary = {"clients": clients, "failed": failed}
    changed = {cid: contracts[cid] for cid, s in clients.items() if s["listed"] > s["skipped"]}
    report.publish_uploads(settings, changed, datetime.now(UTC), _store_lock)
    logger = get_run_logger()
    if failed:
        for cid, error in failed.items():
            logger.error("client %s failed: %s", cid, error)
        return Failed(message=f"{len(failed)} of {len(futures)} client(s) failed: {', '.join(failed)}", data=summary)
    return summary
