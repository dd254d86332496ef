"""The `hourly-sync` flow: every client's SFTP folder into staging and the ledger, clients isolated.

One pass opens the store for writing (and takes its writer lock) once, however many clients there are:
1. the ledger state of every client is read in one read-only session (no lock needed);
2. one task per client (coarse: never per file) lists, classifies and copies to staging with no
   store access, retrying transient SFTP errors with backoff, and returns its ledger changes;
3. one task writes every client's changes in one write session, one transaction per client (one
   client's bad data cannot block the others), then reads the upload reports of the clients it
   changed before letting go of the store.

A client's failure (SFTP or its ledger write) is reported in the flow's result and never stops the
other clients; the flow ends Failed only when a client failed, after all clients ran. A client
whose task failed writes nothing: what it had copied is staged without a row and copied again by
the next pass.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.states import Failed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.retrying import retry_unless
from schemas.contract import Contract, load_contracts
from tasks import report, sftp, store, sync
from tasks.settings import load_settings

# errors that another attempt a few seconds later cannot fix
PERMANENT_ERRORS = (sftp.SftpConfigError, sftp.HostKeyRejected, FileNotFoundError, PermissionError)
# clients synced at once, each over its own SSH connection (sshd drops bursts beyond MaxStartups=10)
SYNC_WORKERS = 8


@task(name="read-ledger", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5.0, 20.0])
def read_ledger_task(clients: list[str]) -> dict[str, store.ClientLedger]:
    """Every client's names and waiting files, in one read-only session (retried while a writer holds the file)."""
    with store.open_store(load_settings().db_path, read_only=True) as con:
        return store.sync_ledgers(con, clients)


@task(
    name="sync-client",
    task_run_name="sync-{contract.id}",
    retries=3,
    retry_delay_seconds=[2.0, 10.0, 30.0],
    retry_condition_fn=retry_unless(*PERMANENT_ERRORS),
    cache_policy=NO_CACHE,  # a sync must always look at the server
)
def sync_client_task(contract: Contract, ledger: store.ClientLedger) -> sync.ClientSyncResult:
    """Connect, list, classify and copy one client's files (no store access); its outcomes and ledger changes."""
    settings = load_settings()
    result = sync.ClientSyncResult(contract.id, datetime.now(UTC))
    with sftp.connect(settings.sftp) as connection:
        sync.collect(connection, settings, contract, ledger, result)
    get_run_logger().info("%s: %s", contract.id, result.summary())
    return result


@task(name="write-ledger", cache_policy=NO_CACHE)
def write_ledger_task(
    results: list[sync.ClientSyncResult], contracts: dict[str, Contract]
) -> tuple[dict[str, str], report.Reports]:
    """In one write session: each client's changes in its own transaction, then the changed clients' reports.

    Returns the clients whose write failed (id -> error) and the reports to publish; with nothing to
    write, opens nothing and returns nothing."""
    settings = load_settings()
    to_write = [r for r in results if r.changes]
    if not to_write:
        return {}, {}  # a quiet hour: the store is not opened for writing at all
    with store.open_store(settings.db_path) as con:
        failed = sync.write_all(con, to_write)
        changed = {r.client: contracts[r.client] for r in to_write if r.client not in failed}
        return failed, report.read_reports(con, changed, datetime.now(UTC)) if changed else {}


# cast: TaskRunner is invariant in its future type, so Prefect's own runner does not match its annotation
@flow(name="hourly-sync", task_runner=cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(SYNC_WORKERS)))
def hourly_sync(client: str | None = None) -> Any:
    """Sync every client (or one); returns {"clients": {id: summary}, "failed": {id: error}}."""
    settings = load_settings()
    contracts = load_contracts(settings.clients_dir)
    if client is not None:
        if client not in contracts:
            raise ValueError(f"unknown client {client!r}; contracts: {', '.join(sorted(contracts))}")
        contracts = {client: contracts[client]}
    ledgers = read_ledger_task(sorted(contracts))
    # quote(): Prefect neither walks nor tracks these big arguments; the task gets the object itself
    futures = {
        cid: sync_client_task.submit(contracts[cid], quote(ledgers[cid]))  # type: ignore[call-overload]
        for cid in sorted(contracts)
    }
    results: list[sync.ClientSyncResult] = []
    failed: dict[str, str] = {}
    for cid, future in futures.items():
        future.wait()
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            failed[cid] = f"{type(outcome).__name__}: {outcome}"
        else:
            results.append(outcome)
    write_failed, reports = write_ledger_task(quote(results), contracts)  # type: ignore[call-overload]
    failed.update(write_failed)
    report.publish_reports(reports)
    summary = {"clients": {r.client: r.summary() for r in results if r.client not in failed}, "failed": failed}
    if failed:
        logger = get_run_logger()
        for cid, error in failed.items():
            logger.error("client %s failed: %s", cid, error)
        return Failed(message=f"{len(failed)} of {len(futures)} client(s) failed: {', '.join(failed)}", data=summary)
    return summary
