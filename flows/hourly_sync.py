"""The `hourly-sync` flow: every client's SFTP folder into staging and the ledger, clients isolated.

One pass opens the store for writing (and takes its writer lock) once, however many clients there are:
1. every client's folder is listed (a few at once), then the ledger rows of the names listed, the
   waiting files, samples and due results are read in one read-only session (no lock needed): the
   read costs what the listings hold, not what the ledger has gathered over the years;
2. each client's listing is classified (`sync.prepare`); a client with nothing to copy and current
   samples is done (a quiet hour costs no task per client); one task per other client (coarse: never
   per file) copies to staging with no store access (a client whose listing failed in step 1 lists,
   reads and classifies its own), retrying transient SFTP errors with backoff, and returns its
   ledger changes;
3. one task writes every client's changes in one write session, one transaction per client (one
   client's bad data cannot block the others), then reads the upload reports of the clients it
   changed and the result documents due before letting go of the store;
4. one task per client with due documents writes them into its `results/` folder, and one short
   write session records them written (a write that failed stays due for the next pass).
The per-client task also checks each file it stages (the pickup check) and writes the client's
`samples/` folder when its contract changed since it was last written.

Before step 1 one login checks the SFTP settings: a refused login or host key fails the whole pass with
one message and no client task (no burst of refused logins); a server down is retried there first.
The pass's SSH connections are shared (`sftp.Connections`): a client borrows an idle one, at most one
per worker is open, and a connection a client's work failed on is closed, never lent to the next.
A client's failure (SFTP or its ledger write) is reported in the flow's result and never stops the
other clients; the flow ends Failed only when a client failed, after all clients ran. A client
whose task failed writes nothing: what it had copied is staged without a row and copied again by
the next pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.utilities.annotations import quote

from flows.client_results import record_written, write_results_task
from flows.retrying import retry_if_transient
from flows.shared import scheduled_time, tag_run, thread_runner, update_overview_task
from schemas.contract import Contract
from tasks import alerts, report, samples_folder, sftp, store, sync
from tasks.resources import Resources, from_environment
from tasks.results import Document, pending_documents

# clients synced at once, each worker over one SSH connection (sshd drops bursts beyond MaxStartups=10)
SYNC_WORKERS = 8


@dataclass(frozen=True)
class PassState:
    """What a pass reads from the store after the listings: each listed client's ledger, the contract its
    samples follow, documents still due. A client whose listing failed has no ledger."""

    ledgers: dict[str, store.ClientLedger]
    samples: dict[str, str]  # client -> digest of the contract its samples folder was written from
    results_due: set[str]  # clients with a result document a failed write left due


@task(name="list-folders", cache_policy=NO_CACHE)
def list_folders_task(
    res: Resources, connections: sftp.Connections, contracts: list[Contract]
) -> dict[str, list[sftp.RemoteFile]]:
    """Every client's folder listed over the pass's connections (and its staging's crash leftovers removed);
    a failed listing leaves its client out."""
    return sync.list_folders(connections, res.settings, contracts, SYNC_WORKERS, datetime.now(UTC))


@task(name="read-ledger", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5.0, 20.0])
def read_ledger_task(res: Resources, clients: list[str], listings: dict[str, list[sftp.RemoteFile]]) -> PassState:
    """The ledger of the names each client listed, waiting files, samples and due results, in one read-only
    session (retried while a writer holds the file)."""
    listed = {client: sync.lookup_names(files) for client, files in listings.items()}
    with res.settings.store.read() as con:
        return PassState(
            store.sync_ledgers(con, listed),
            store.samples_digests(con, clients),
            store.clients_with_pending_results(con, clients),
        )


# a dropped connection, a stalled server or a server restarting: retried with backoff; a refused login never
SFTP_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2.0, 10.0, 30.0],
    "retry_condition_fn": retry_if_transient,
    "cache_policy": NO_CACHE,  # a sync must always look at the server
}


@task(name="check-sftp", task_run_name="check-sftp", **SFTP_RETRIES)
def check_sftp_task(connections: sftp.Connections) -> None:
    """Log in once before the clients' tasks: a refused login or an unknown host key fails the pass with
    one message, instead of once per client with a burst of refused logins at the server. The
    connection is kept for the first client."""
    with connections.lend():
        pass


@task(name="sync-client", task_run_name="sync-{contract.id}", **SFTP_RETRIES)
def sync_client_task(
    res: Resources,
    connections: sftp.Connections,
    contract: Contract,
    prepared: sync.Prepared | None,
    samples: str | None,
) -> sync.ClientSyncResult:
    """Copy and check one client's new files over a shared connection, and write its samples folder when
    its contract changed since `samples` (no store access); its outcomes and ledger changes.

    Without `prepared` (its listing failed at the start of the pass) the client's folder is listed, its
    ledger read and its files classified here."""
    settings = res.settings
    with connections.lend() as connection:
        if prepared is None:
            prepared = sync.prepare_alone(connection, settings, contract, datetime.now(UTC))
        result = prepared.attempt()
        sync.copy_new(connection, settings, contract, prepared, result)
        written = samples_folder.refresh(connection, contract, samples)
    if written is not None:
        result.changes.append(sync.SamplesWritten(written))
    get_run_logger().info("%s: %s", contract.id, result.summary())
    return result


def prepare_clients(
    res: Resources,
    contracts: dict[str, Contract],
    listings: dict[str, list[sftp.RemoteFile]],
    state: PassState,
) -> tuple[list[sync.ClientSyncResult], dict[str, sync.Prepared | None]]:
    """Every listed client's files classified: the results of the quiet clients (nothing to copy, samples
    current: no task, no SFTP work), and the clients that need their task (None: not listed yet)."""
    now = datetime.now(UTC)
    quiet: list[sync.ClientSyncResult] = []
    busy: dict[str, sync.Prepared | None] = {}
    for cid in sorted(contracts):
        listed, ledger = listings.get(cid), state.ledgers.get(cid)
        if listed is None or ledger is None:
            busy[cid] = None
            continue
        prepared = sync.prepare(res.settings, contracts[cid], ledger, listed, now)
        if prepared.to_copy or not samples_folder.is_current(contracts[cid], state.samples.get(cid)):
            busy[cid] = prepared
        else:
            quiet.append(prepared.result)
    return quiet, busy


@task(name="write-ledger", cache_policy=NO_CACHE)
def write_ledger_task(
    res: Resources, results: list[sync.ClientSyncResult], contracts: dict[str, Contract], results_due: set[str]
) -> tuple[dict[str, str], report.Reports, dict[str, list[Document]]]:
    """In one write session: each client's changes in its own transaction, then the changed clients'
    reports and every due result document.

    Returns the clients whose write failed (id -> error), the reports to publish and the documents to
    write; with nothing to write, opens nothing for writing (only to read documents left due)."""
    settings = res.settings
    to_write = [r for r in results if r.changes]
    if not to_write:  # a quiet hour: the store is not opened for writing at all
        if not results_due:
            return {}, {}, {}
        with settings.store.read() as con:
            due = {client: contracts[client] for client in results_due}
            return {}, {}, pending_documents(con, due, settings.retention_days)
    with settings.store.write() as con:
        failed = sync.write_all(con, to_write)
        uploads = [r for r in to_write if any(not isinstance(c, sync.SamplesWritten) for c in r.changes)]
        changed = {r.client: contracts[r.client] for r in uploads if r.client not in failed}  # samples: no report
        reports = report.read_reports(con, changed, datetime.now(UTC)) if changed else {}
        return failed, reports, pending_documents(con, contracts, settings.retention_days)


def write_results(res: Resources, contracts: dict[str, Contract], documents: dict[str, list[Document]]) -> None:
    """Each client's due documents into its folder (a task per client, at once), then recorded written."""
    futures = [write_results_task.submit(res, contracts[cid], quote(docs)) for cid, docs in documents.items()]  # type: ignore[call-overload]
    written = [f.result(raise_on_failure=False) for f in futures]
    record_written(res, [key for keys in written if isinstance(keys, list) for key in keys])


def _run_name() -> str:
    """`sync-2026-12-01-0605` (the run's scheduled UTC time), or `sync-northwind-2026-12-01-0605` for one client."""
    client = flow_run.parameters.get("client")
    return f"sync-{client + '-' if client else ''}{scheduled_time().astimezone(UTC):%Y-%m-%d-%H%M}"


@flow(name="hourly-sync", flow_run_name=_run_name, task_runner=thread_runner(SYNC_WORKERS))
def hourly_sync(client: str | None = None) -> Any:
    """Sync every client (or one); returns {"clients": {id: summary}, "failed": {id: error}}."""
    tag_run("sync", client)
    res = from_environment()
    contracts = res.contracts if client is None else {client: res.contract(client)}
    connections = sftp.Connections(res.settings.sftp)
    failed: dict[str, str] = {}
    try:
        # quote(): Prefect neither walks nor tracks these arguments; the task gets the object itself. Walked, a
        # contract is 64 visits, twice per task call: 0.4 s a pass for the 1,000 contracts of write-ledger
        check_sftp_task(quote(connections))  # type: ignore[call-overload]
        listings = list_folders_task(res, quote(connections), quote([contracts[cid] for cid in sorted(contracts)]))  # type: ignore[call-overload]
        state = read_ledger_task(res, quote(sorted(contracts)), quote(listings))  # type: ignore[call-overload]
        results, busy = prepare_clients(res, contracts, listings, state)
        futures = {
            cid: sync_client_task.submit(
                res, quote(connections), quote(contracts[cid]), quote(prepared), state.samples.get(cid)
            )  # type: ignore[call-overload]
            for cid, prepared in busy.items()
        }
        for cid, future in futures.items():
            outcome = future.result(raise_on_failure=False)
            if isinstance(outcome, BaseException):
                failed[cid] = f"{type(outcome).__name__}: {outcome}"
            else:
                results.append(outcome)
    finally:
        connections.close()
    results.sort(key=lambda r: r.client)
    write_failed, reports, documents = write_ledger_task(res, quote(results), quote(contracts), state.results_due)  # type: ignore[call-overload]
    failed.update(write_failed)
    write_results(res, contracts, documents)
    alerts.emit(alert for result in results if result.client not in failed for alert in alerts.sync_alerts(result))
    alerts.emit(alerts.run_failed(cid, "sync", error) for cid, error in failed.items())
    report.publish_reports(reports)
    update_overview_task.submit(res).wait()
    summary = {"clients": {r.client: r.summary() for r in results if r.client not in failed}, "failed": failed}
    if failed:
        logger = get_run_logger()
        for cid, error in failed.items():
            logger.error("client %s failed: %s", cid, error)
        return Failed(message=f"{len(failed)} of {len(contracts)} client(s) failed: {', '.join(failed)}", data=summary)
    return summary
