"""The four operations the kill loop interrupts (sync, import, backfill, purge), as the flows compose
them but without Prefect, and the fork server that runs each in a fresh process of its own group.

`python -m tests.kill_ops` reads one JSON request a line on stdin (`{"op", "now", "files", "log"}`),
forks a child that runs the operation with the settings of its environment (SFTP_IMPORT_HOME, the
SFTP_IMPORT_SFTP_* variables, and whatever else names the store), prints `{"pid": …}` at once and
`{"status": …, "seconds": …}` (the exit code, -9 when SIGKILLed, also after RUN_LIMIT_SECONDS, and
how long it ran) when the child has ended. Forking from a process that has imported everything
already makes each run cost the operation, not Python's start-up.
`python -m tests.kill_ops OP NOW CLIENTS FILES` runs one operation on some clients in that process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from schemas.contract import Contract, load_contracts
from schemas.samples import write_sample
from tasks import backfill, formats, importer, results, retention, sftp, store, sync
from tasks.settings import Settings, load_settings
from tasks.validate import parse_file

RUN_LIMIT_SECONDS = 120
PURGE_AFTER = timedelta(days=40)  # the purge runs this long after the scenario's uploads (retention: 35)

Operation = Callable[[Settings, dict[str, Contract], datetime, dict[str, list[str]]], None]


def _publish(settings: Settings, contracts: dict[str, Contract], now: datetime) -> None:
    """Write every client's due result documents and record them written (the flows' last step)."""
    with settings.store.read() as con:
        due = results.pending_documents(con, contracts, settings.retention_days)
    written = [key for client, docs in due.items() for key in results.publish(settings, contracts[client], docs)]
    if written:
        with settings.store.write() as con, store.transaction(con):
            store.record_results_written(con, written, now)


def run_sync(settings: Settings, contracts: dict[str, Contract], now: datetime, files: dict[str, list[str]]) -> None:
    """The hourly sync of every client at `now`, then the result documents."""
    with sftp.connect(settings.sftp) as connection:
        for contract in contracts.values():
            sync.sync_client(connection, settings, contract, now)
    _publish(settings, contracts, now)


def _import(settings: Settings, contract: Contract, names: list[str], kind: str, now: datetime) -> None:
    run_id = f"{kind}-{uuid.uuid4().hex}"
    importer.import_client(settings, contract, names, run_id=run_id, kind=kind, cutoff=None, started_at=now)


def run_import(settings: Settings, contracts: dict[str, Contract], now: datetime, files: dict[str, list[str]]) -> None:
    """Every client's import of all its staged files, then the result documents."""
    for contract in contracts.values():
        with settings.store.read() as con:
            names = store.staged_files(con, contract.id, None)
        _import(settings, contract, names, "daily", now)
    _publish(settings, contracts, now)


def run_backfill(
    settings: Settings, contracts: dict[str, Contract], now: datetime, files: dict[str, list[str]]
) -> None:
    """A backfill of each client's named files (synced first when not yet staged), then the result documents."""
    for client, names in files.items():
        contract = contracts[client]
        _import(settings, contract, backfill.check_and_sync(settings, contract, names), "backfill", now)
    _publish(settings, contracts, now)


def run_backfill_again(
    settings: Settings, contracts: dict[str, Contract], now: datetime, files: dict[str, list[str]]
) -> None:
    """The same backfill again after a kill, as ops run it: every name the backfill may still take (staged,
    or closed by the killed run, which did not complete); a name its run imported to the end is
    refused, rightly (already imported), so when the kill came after that, only the results are left."""
    left: dict[str, list[str]] = {}
    for client, names in files.items():
        with settings.store.read() as con:
            entries = store.ledger_entries(con, client, names)
        left[client] = [n for n in names if n not in entries or backfill.refusal(n, entries[n]) is None]
    run_backfill(settings, contracts, now, {client: names for client, names in left.items() if names})


def run_purge(settings: Settings, contracts: dict[str, Contract], now: datetime, files: dict[str, list[str]]) -> None:
    """Retention of every client, `PURGE_AFTER` the uploads: everything received is due."""
    with sftp.connect(settings.sftp) as connection:
        for contract in contracts.values():
            retention.purge_client(connection, settings, contract, now + PURGE_AFTER)


OPERATIONS: dict[str, Operation] = {
    "sync": run_sync,
    "import": run_import,
    "backfill": run_backfill,
    "backfill-again": run_backfill_again,
    "purge": run_purge,
}


def _child(request: dict[str, Any], contracts: dict[str, Contract]) -> None:
    """Run one operation in this forked process and exit (0: completed); its output goes to the request's log."""
    code = 1
    try:
        os.setpgid(0, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        print(f"--- {request['op']} pid {os.getpid()}", flush=True)
        operation = OPERATIONS[request["op"]]
        operation(load_settings(), contracts, datetime.fromisoformat(request["now"]), request["files"])
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _warm_up(contracts: dict[str, Contract]) -> None:
    """Validate each client's sample in each format once, so every child starts with the readers and
    the schemas loaded (no store, no connection: nothing a fork must not share)."""
    for contract in contracts.values():
        for fmt in formats.writable():
            parse_file(f"warm-up.{fmt}", write_sample(contract, fmt), contract, max_bytes=1 << 20, warn_bytes=1 << 20)


def serve() -> None:
    """The fork server: one child per request line, its pid and then its exit code on stdout."""
    contracts = load_contracts(load_settings().clients_dir)
    _warm_up(contracts)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, contracts)
        with contextlib.suppress(OSError):  # the child set it first, or has already exited
            os.setpgid(pid, pid)  # also here: the group exists before its pid is handed out
        print(json.dumps({"pid": pid}), flush=True)
        signal.signal(signal.SIGALRM, lambda *_, group=pid: os.killpg(group, signal.SIGKILL))
        started = time.monotonic()
        signal.alarm(RUN_LIMIT_SECONDS)  # a hung operation is killed (and its rerun reported failed): no hang
        _, status = os.waitpid(pid, 0)
        signal.alarm(0)
        print(
            json.dumps({"status": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - started}), flush=True
        )


def once(op: str, now: str, clients: str, files: str) -> None:
    """Run one operation on the named clients only (comma-separated) in this process: the concurrency test's
    unit, several of which run at once."""
    contracts = load_contracts(load_settings().clients_dir)
    chosen = {client: contracts[client] for client in clients.split(",")}
    OPERATIONS[op](load_settings(), chosen, datetime.fromisoformat(now), json.loads(files))


if __name__ == "__main__":
    once(*sys.argv[1:]) if len(sys.argv) > 1 else serve()
