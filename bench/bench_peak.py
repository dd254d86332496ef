"""Benchmark: the peak minute. N clients share one import time; each has one staged R-row CSV.

Starts a real local Prefect server (own PREFECT_HOME in a temp folder), sets up the pool, deploys
the import-slot shards for those contracts, then for each worker count: a fresh store and staging,
that many process workers, every shard triggered through the API, and the wall time until all runs
are done. Prints total seconds, seconds per client, files and contacts imported (counted in the
store), task runs left Pending, and the orchestration cost per client: wall time less the
in-process work the ledger recorded (read + validate + upsert seconds of each file).
Run: `.venv/bin/python -m bench.bench_peak [--clients 1000] [--rows 5000] [--workers 1 2]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml

from deployments import local
from deployments.generate import REPO
from schemas.contract import Contract, load_contracts
from schemas.samples import write_rows
from tasks import store

TEMPLATE = REPO / "examples" / "clients" / "northwind.yaml"
IMPORT_TIME, TIMEZONE = "06:00", "Europe/Amsterdam"


def make_contracts(clients_dir: Path, clients: int) -> dict[str, Contract]:
    """Contracts client-0000… with northwind's fields, all at the same import time and timezone."""
    template = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    for i in range(clients):
        client = f"client-{i:04d}"
        contract = {**template, "id": client, "name": client, "import_time": IMPORT_TIME, "timezone": TIMEZONE}
        contract.pop("sftp_dir", None)
        (clients_dir / f"{client}.yaml").write_text(yaml.safe_dump(contract), encoding="utf-8")
    return load_contracts(clients_dir)


def csv_bytes(contract: Contract, rows: int) -> bytes:
    """One CSV of `rows` valid contacts for the contract's fields (the same bytes serve every client)."""
    samples: dict[str, Any] = {
        "string": lambda i: f"text{i % 997}",
        "email": lambda i: f"person{i}@example.com",
        "integer": lambda i: i % 5000,
        "decimal": lambda i: Decimal(f"{i % 100000}.{i % 100:02}"),
        "date": lambda i: (datetime(2020, 1, 1) + timedelta(days=i % 2000)).date(),
        "datetime": lambda i: datetime(2026, 1, 1) + timedelta(minutes=i % 500_000),
        "boolean": lambda i: i % 2 == 0,
    }
    records = [
        {f.id: (f.values[i % len(f.values)] if f.type == "enum" else samples[f.type](i)) for f in contract.fields}
        for i in range(rows)
    ]
    return write_rows(contract, records, "csv")


def stage(home: Path, contracts: dict[str, Contract], data: bytes) -> None:
    """A fresh store and staging: each client's copy of the file, staged an hour before its cut-off."""
    shutil.rmtree(home, ignore_errors=True)
    received = datetime.now(UTC) - timedelta(days=1)
    with store.open_store(home / "store.duckdb") as con, store.transaction(con):
        for client in contracts:
            path = home / "staging" / client / "contacts.csv"
            path.parent.mkdir(parents=True)
            path.write_bytes(data)
            arrival = {"name": "contacts.csv", "status": "staged", "size": len(data), "mtime": received}
            store.record_arrivals(con, client, received, [arrival | {"staged_path": str(path)}])


def run_slots(api: str, env: dict[str, str], logs: Path, workers: int) -> tuple[float, int]:
    """Start `workers` process workers, trigger every import-slot deployment, wait; the wall seconds
    and the number of task runs of those flow runs left Pending."""
    with httpx.Client(base_url=api, timeout=60) as http:
        body = {"flows": {"name": {"any_": ["import-slot"]}}}
        deployments = http.post("/deployments/filter", json=body).json()
        started = time.monotonic()
        runs = []
        for deployment in deployments:
            response = http.post(f"/deployments/{deployment['id']}/create_flow_run", json={})
            if response.is_error:
                raise RuntimeError(f"{deployment['name']}: {response.status_code} {response.text[:500]}")
            runs.append(response.json()["id"])
        processes = [local.start_worker(env, logs / f"worker-{workers}-{n}.log") for n in range(workers)]
        try:
            while True:
                found = http.post("/flow_runs/filter", json={"flow_runs": {"id": {"any_": runs}}}).json()
                states = [run["state"]["type"] for run in found]
                if all(state in local.TERMINAL for state in states):
                    break
                time.sleep(1)
            elapsed = time.monotonic() - started
        finally:
            for process in processes:
                local.stop(process)
        pending = {"flow_runs": {"id": {"any_": runs}}, "task_runs": {"state": {"type": {"any_": ["PENDING"]}}}}
        left_pending = len(http.post("/task_runs/filter", json=pending).json())
    failed = [
        run["name"] + ": " + str(run["state"].get("message")) for run in found if run["state"]["type"] != "COMPLETED"
    ]
    if failed:
        print("  not completed:\n   " + "\n   ".join(failed))
    return elapsed, left_pending


def imported_contacts(home: Path) -> tuple[int, int, float]:
    """(files imported, contacts imported, seconds of in-process work) according to the ledger."""
    with store.open_store(home / "store.duckdb", read_only=True) as con:
        row = con.execute(
            "SELECT count(*), COALESCE(sum(rows_imported), 0), COALESCE(sum(read_seconds + upsert_seconds), 0) "
            "FROM files WHERE status = 'imported'"
        )
        files, contacts, work = row.fetchone()
    return int(files), int(contacts), float(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="worker counts, one round each")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-peak-"))
    clients_dir, home = root / "clients", root / "home"
    clients_dir.mkdir()
    contracts = make_contracts(clients_dir, args.clients)
    data = csv_bytes(next(iter(contracts.values())), args.rows)
    env = dict(os.environ) | {"SFTP_IMPORT_CLIENTS_DIR": str(clients_dir), "SFTP_IMPORT_HOME": str(home)}
    print(f"{args.clients} clients at {IMPORT_TIME} {TIMEZONE}, one {args.rows:,}-row CSV each ({len(data):,} bytes)")
    with local.prefect_server(root, env) as (api, child_env):
        python, prefect = str(local.BIN / "python"), str(local.BIN / "prefect")
        local.run_checked([python, "-m", "deployments.setup"], child_env)
        prefect_file = root / "prefect.yaml"
        local.run_checked([python, "-m", "deployments.generate", "--output", str(prefect_file)], child_env)
        started = time.monotonic()
        local.run_checked([prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)], child_env)
        print(f"deployed in {time.monotonic() - started:.0f} s; logs in {root}")
        for workers in args.workers:
            stage(home, contracts, data)
            elapsed, pending = run_slots(api, child_env, root, workers)
            files, contacts, work = imported_contacts(home)
            print(
                f"{workers} worker(s): {elapsed:.0f} s for {args.clients} clients = {elapsed / args.clients:.2f} s "
                f"per client; {files} files, {contacts:,} contacts imported; {pending} task run(s) left Pending; "
                f"in-process work {work / args.clients:.2f} s per client, orchestration and waiting "
                f"{(elapsed - work) / args.clients:.2f} s per client"
            )


if __name__ == "__main__":
    main()
