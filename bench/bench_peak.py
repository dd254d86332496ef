"""Benchmark: the peak minute. N clients share one import time; each has one staged R-row CSV.

Starts a real local Prefect server (own PREFECT_HOME in a temp folder), sets up the pool, deploys
the import-slot shards for those contracts, then for each worker count: a fresh store and staging,
that many process workers, every shard triggered through the API, and the wall time until all runs
are done. Prints total seconds, seconds per client, files and contacts imported (counted in the
store), task runs left Pending, the in-process work the ledger recorded (read + validate + upsert
seconds of each file), the CPU each part used (Prefect server, PostgreSQL, the workers) and, on
PostgreSQL, the commits per client of the store and of the Prefect server.

`--store duckdb` (the embedded default): one home, its DuckDB file and SQLite Prefect server, the
workers on one machine. `--store postgresql`: the scale-out mode on a PostgreSQL cluster of its own
(Debian's binaries): the Prefect server and the store on PostgreSQL, a shared staging folder, and
each worker a "machine" of its own (its own SFTP_IMPORT_HOME; nothing shared but the server, the
store and the staging).
Run: `.venv/bin/python -m bench.bench_peak [--clients 1000] [--rows 5000] [--workers 1 3] [--store postgresql]`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml

from deployments import local, server
from deployments.cluster import deploy, wait_for_runs
from deployments.generate import REPO
from deployments.postgres import Cluster, create_database, postgres_cluster
from schemas.contract import Contract, load_contracts
from schemas.samples import write_rows
from tasks import store

TEMPLATE = REPO / "examples" / "clients" / "northwind.yaml"
IMPORT_TIME, TIMEZONE = "06:00", "Europe/Amsterdam"
SETTLE_SECONDS = 60  # task runs still Pending this long after their flow runs ended are counted as left Pending
RUN_LIMIT_SECONDS = 3600.0  # the slot runs are given up after this long (a quiet run takes 3–6 minutes)


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


def stage(target: store.Store, staging: Path, contracts: dict[str, Contract], data: bytes) -> None:
    """Each client's copy of the file in a fresh staging folder and (empty) store, staged a day before its cut-off."""
    shutil.rmtree(staging, ignore_errors=True)
    received = datetime.now(UTC) - timedelta(days=1)
    with target.write() as con, store.transaction(con):
        for client in contracts:
            path = staging / client / "contacts.csv"
            path.parent.mkdir(parents=True)
            path.write_bytes(data)
            arrival = {"name": "contacts.csv", "status": "staged", "size": len(data), "mtime": received}
            store.record_arrivals(con, client, received, [arrival | {"staged_path": str(path)}])


def run_slots(api: str, envs: list[dict[str, str]], logs: Path) -> tuple[float, int]:
    """Start a process worker per environment, trigger every import-slot deployment, wait; the wall
    seconds and the number of task runs of those flow runs left Pending."""
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
        processes = [
            local.start_worker(env, logs / f"worker-{len(envs)}-{n}.log", name=f"machine-{n + 1}")
            for n, env in enumerate(envs)
        ]
        try:
            found = list(wait_for_runs(api, runs, seconds=RUN_LIMIT_SECONDS).values())
            elapsed = time.monotonic() - started
        finally:
            for process in processes:
                local.stop(process)
        pending = {"flow_runs": {"id": {"any_": runs}}, "task_runs": {"state": {"type": {"any_": ["PENDING"]}}}}
        settled = time.monotonic() + SETTLE_SECONDS  # the API records task states from events, a moment late
        while (left_pending := len(http.post("/task_runs/filter", json=pending).json())) and time.monotonic() < settled:
            time.sleep(1)
    failed = [
        run["name"] + ": " + str(run["state"].get("message")) for run in found if run["state"]["type"] != "COMPLETED"
    ]
    if failed:
        print("  not completed:\n   " + "\n   ".join(failed))
    return elapsed, left_pending


def imported_contacts(source: store.Store) -> tuple[int, int, float]:
    """(files imported, contacts imported, seconds of in-process work) according to the ledger."""
    with source.read() as con:
        row = con.execute(
            "SELECT count(*), COALESCE(sum(rows_imported), 0), COALESCE(sum(read_seconds + upsert_seconds), 0) "
            "FROM files WHERE status = 'imported'"
        )
        files, contacts, work = row.fetchone()
    return int(files), int(contacts), float(work)


@dataclass(frozen=True)
class Platform:
    """What a round runs on: the API, the env for its clients, a fresh empty store's URL per round, and
    the PostgreSQL cluster when there is one."""

    api: str
    child_env: dict[str, str]
    fresh_store: Callable[[], str]
    cluster: Cluster | None = None

    def cluster_pid(self) -> int | None:
        """The postmaster's pid (its reaped backends' CPU counts with it)."""
        if self.cluster is None:
            return None
        return int((self.cluster.folder / "data" / "postmaster.pid").read_text().split()[0])


@contextmanager
def platform(root: Path, kind: str, env: dict[str, str]) -> Iterator[Platform]:
    """The Prefect server (on SQLite, or with the store on a PostgreSQL cluster of its own)."""
    if kind == "duckdb":
        with local.prefect_server(root, env) as (api, child_env):

            def fresh_duckdb() -> str:
                (root / "home" / "store.duckdb").unlink(missing_ok=True)
                return f"duckdb://{root / 'home' / 'store.duckdb'}"

            yield Platform(api, child_env, fresh_duckdb)
        return
    with postgres_cluster() as cluster:  # its own temp folder: the postgres user cannot enter `root`
        rounds = itertools.count()

        def fresh_postgresql() -> str:
            return create_database(cluster, f"store{next(rounds)}")

        with local.prefect_server(root, env, database_url=create_database(cluster, "prefect")) as (api, child_env):
            yield Platform(api, child_env, fresh_postgresql, cluster)


def cpu_seconds(pid: int, *, children_only: bool = False) -> float:
    """CPU time of a process and of its children it has reaped, or of those children only (from /proc:
    user, system, then the children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[13 if children_only else 11 : 15]) / os.sysconf("SC_CLK_TCK")


def cpu_by_part(root: Path, on: Platform) -> dict[str, float]:
    """CPU seconds so far of the Prefect server, PostgreSQL (all its backends) and this process's reaped
    children (the workers and their flow runs, once stopped)."""
    running = server.running(root)
    assert running is not None
    parts = {"prefect server": cpu_seconds(running.pid), "workers": cpu_seconds(os.getpid(), children_only=True)}
    if (postmaster := on.cluster_pid()) is not None:
        parts["postgresql"] = cpu_seconds(postmaster)
    return parts


def commits(url: str) -> dict[str, int]:
    """Transactions committed so far per database of the store's PostgreSQL cluster (none for DuckDB)."""
    if not url.startswith("postgresql://"):
        return {}
    import psycopg

    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT datname, xact_commit FROM pg_stat_database WHERE datname IN ('prefect', current_database())"
        ).fetchall()
    return {"prefect server" if name == "prefect" else "store": int(count) for name, count in rows}


def machine_envs(child_env: dict[str, str], root: Path, kind: str, workers: int, url: str) -> list[dict[str, str]]:
    """Each worker's environment: the store and the shared staging; with PostgreSQL, a home of its own."""
    shared = child_env | {"SFTP_IMPORT_STORE_URL": url, "SFTP_IMPORT_STAGING": str(root / "staging")}
    if kind == "duckdb":
        return [shared] * workers
    return [shared | {"SFTP_IMPORT_HOME": str(root / f"machine-{n + 1}")} for n in range(workers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="worker counts, one round each")
    parser.add_argument("--store", choices=("duckdb", "postgresql"), default="duckdb")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-peak-"))
    clients_dir, home = root / "clients", root / "home"
    clients_dir.mkdir()
    contracts = make_contracts(clients_dir, args.clients)
    data = csv_bytes(next(iter(contracts.values())), args.rows)
    env = dict(os.environ) | {"SFTP_IMPORT_CLIENTS_DIR": str(clients_dir), "SFTP_IMPORT_HOME": str(home)}
    print(f"{args.clients} clients at {IMPORT_TIME} {TIMEZONE}, one {args.rows:,}-row CSV each ({len(data):,} bytes)")
    print(f"store and Prefect server: {args.store}")
    with platform(root, args.store, env) as on:
        api, child_env = on.api, on.child_env
        started = time.monotonic()
        deploy(child_env, root)
        print(f"pool and deployments made in {time.monotonic() - started:.0f} s; logs in {root}")
        for workers in args.workers:
            url = on.fresh_store()
            stage(store.store_at(url), root / "staging", contracts, data)
            before, cpu_before = commits(url), cpu_by_part(root, on)
            elapsed, pending = run_slots(api, machine_envs(child_env, root, args.store, workers, url), root)
            cpu = {part: spent - cpu_before[part] for part, spent in cpu_by_part(root, on).items()}
            files, contacts, work = imported_contacts(store.store_at(url))
            print(
                "  CPU: "
                + ", ".join(f"{part} {spent:.0f} s ({spent / elapsed:.0%} of a core)" for part, spent in cpu.items())
            )
            for database, count in commits(url).items():
                done = count - before[database]
                print(f"  {database}: {done:,} commits, {done / args.clients:.1f} per client, {done / elapsed:.0f}/s")
            print(
                f"{workers} worker(s): {elapsed:.0f} s for {args.clients} clients = {elapsed / args.clients:.2f} s "
                f"per client; {files} files, {contacts:,} contacts imported; {pending} task run(s) left Pending; "
                f"in-process work (read, validate, upsert; summed over the threads) {work / args.clients:.2f} s "
                "per client"
            )
            store.close_store(url)


if __name__ == "__main__":
    main()
