"""`make demo-cluster`: several machines, shown on one (deployments/cluster.py).

Under .demo/cluster/: a PostgreSQL cluster of the demo's own (Debian's binaries) holding two
databases, the Prefect server's and the store's; the Prefect server on the first; a staging folder
every machine reaches by its URL; the demo's SFTP server with the example clients' uploads; and two
process workers, `machine-1` and `machine-2`, each with its own home. The hourly-sync deployment
runs, then each client's daily-import (now=True) at once; the demo prints which machine ran each flow
run, then `status` read from the PostgreSQL store, and where the UI is.

Every run starts from nothing (the previous run's server and PostgreSQL are stopped, the folder
removed). At the end the workers stop; the Prefect server and PostgreSQL keep running so the UI
shows the runs, until the next run or `make clean` (`python -m demo.cluster stop`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from demo.run import DEMO, REPO

CLUSTER = DEMO / "cluster"
MACHINES = ("machine-1", "machine-2")
SHARED = {  # what every machine (and this process) is given; each machine adds its own home
    "SFTP_IMPORT_CLIENTS_DIR": str(REPO / "examples" / "clients"),
    "SFTP_IMPORT_STAGING": f"file://{CLUSTER / 'staging'}",
    "SFTP_IMPORT_SETTLE_SECONDS": "0",  # the demo's uploads are complete when the sync runs
    "SFTP_IMPORT_CODE_DIR": str(REPO),  # prefect.yaml's pull step: the flows' code on each machine
    "PREFECT_WORKER_QUERY_SECONDS": "2",  # a worker asks for work every 2 s (default 10)
}


def stop() -> None:
    """Stop a previous run's Prefect server and PostgreSQL cluster (when running)."""
    from deployments import server
    from deployments.postgres import Cluster, stop_cluster

    server.stop(CLUSTER / "server")
    if (CLUSTER / "postgres" / "data" / "postmaster.pid").exists():
        with contextlib.suppress(RuntimeError):  # a pid file left by a killed server: nothing runs
            stop_cluster(Cluster(CLUSTER / "postgres", port=0))


def _run_flows(api: str, clients: list[str]) -> list[str]:
    """The hourly sync through its deployment, then every client's import at once; the flow run ids."""
    from deployments.cluster import run_deployment, wait_for_runs

    print("\nRunning the hourly-sync deployment …")
    sync = run_deployment(api, "hourly-sync/hourly-sync")
    wait_for_runs(api, [sync])
    print(f"Running the daily-import deployment (now=True) of {', '.join(clients)} at once …")
    imports = [run_deployment(api, "daily-import/daily-import", {"client": c, "now": True}) for c in clients]
    wait_for_runs(api, imports)
    return [sync, *imports]


def _print_runs(api: str, ids: list[str]) -> None:
    """Each flow run: its name, final state, the machine that ran it and how long it ran."""
    from deployments.cluster import flow_runs, machines_of

    runs, machines = flow_runs(api, ids), machines_of(api, ids)
    print("\nflow run                                  state       machine     ran")
    for run_id in ids:
        run = runs[run_id]
        machine = machines.get(run_id, "?")
        print(f"  {run['name']:<40}{run['state']['type']:<12}{machine:<12}{run['total_run_time']:.1f} s")


def main() -> None:
    started = time.monotonic()
    from demo.sftp_server import running_server
    from demo.uploads import upload_demo_files
    from deployments import local, server
    from deployments.cluster import deploy, machine_env
    from deployments.postgres import create_database, start_cluster
    from schemas.contract import load_contracts
    from tasks.settings import load_settings
    from tasks.status import render_table, status_report

    stop()
    shutil.rmtree(CLUSTER, ignore_errors=True)
    pg = start_cluster(CLUSTER / "postgres")
    prefect_db, store_url = create_database(pg, "prefect"), create_database(pg, "store")
    print(f"PostgreSQL on 127.0.0.1:{pg.port} ({CLUSTER / 'postgres'}): databases prefect and store")
    os.environ.update(SHARED | {"SFTP_IMPORT_HOME": str(CLUSTER / "ops"), "SFTP_IMPORT_STORE_URL": store_url})
    contracts = load_contracts(Path(SHARED["SFTP_IMPORT_CLIENTS_DIR"]))
    for contract in contracts.values():
        (CLUSTER / "sftp" / contract.directory).mkdir(parents=True)

    with running_server(CLUSTER / "sftp", CLUSTER / "keys") as sftp:
        os.environ.update(sftp.env())
        print(f"SFTP server on {sftp.host}:{sftp.port}")
        upload_demo_files(load_settings().sftp, contracts)
        running, _ = server.start(CLUSTER / "server", database_url=prefect_db)
        print(f"Prefect server {running.ui} on PostgreSQL ({running.database})")
        shared = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        shared |= server.client_env(CLUSTER / "server", running.url) | SHARED
        deploy(shared, CLUSTER)
        workers: list[subprocess.Popen[bytes]] = []
        try:
            for name in MACHINES:
                env = machine_env(shared, CLUSTER / name)
                # one run at a time each: the three imports at once cannot all go to one machine
                workers.append(local.start_worker(env, CLUSTER / name / "worker.log", limit=1, name=name))
                print(f"  {name}: a process worker, home {CLUSTER / name} (log {CLUSTER / name / 'worker.log'})")
            ids = _run_flows(running.url, list(contracts))
            _print_runs(running.url, ids)
        finally:
            for worker in workers:
                local.stop(worker)

    print("\n" + render_table(status_report(load_settings(), contracts, datetime.now(UTC))))
    print(f"(the PostgreSQL store: SFTP_IMPORT_STORE_URL={store_url})")
    print(f"\nThe Prefect UI with these runs: {running.ui} (its database: {running.database})")
    print("The server and PostgreSQL keep running for the UI; `make clean` or the next run stops them.")
    print(f"demo-cluster took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:] == ["stop"]:
        stop()
    else:
        main()
