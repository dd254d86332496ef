"""Benchmark: one sync pass over N clients × M small files against the embedded asyncssh server.

The server runs in its own process (as a real server would), the sync as plain functions over one
connection; `--flow` also times two `hourly-sync` flow runs, all new then nothing new (on a resident
Prefect server of the benchmark's home, started before and not timed, unless PREFECT_API_URL is set).
Run: `.venv/bin/python -m bench.bench_sync [--clients 100] [--files 10] [--flow]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import yaml

from deployments import server
from schemas.contract import load_contracts
from tasks import sftp, sync
from tasks.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "examples" / "clients" / "northwind.yaml"


def make_clients(clients_dir: Path, root: Path, clients: int, files: int) -> None:
    """Contracts client-000… (northwind's fields) and their SFTP folders with small, settled CSV files."""
    template = yaml.safe_load(TEMPLATE.read_text())
    old = time.time() - 3600
    for i in range(clients):
        client = f"client-{i:03d}"
        (clients_dir / f"{client}.yaml").write_text(yaml.safe_dump({**template, "id": client, "name": client}))
        folder = root / client
        folder.mkdir(parents=True)
        for j in range(files):
            path = folder / f"contacts-{j:02d}.csv"
            path.write_text(f"Email,First Name\nuser{i}-{j}@example.com,User {j}\n")
            os.utime(path, (old, old))


def start_server(root: Path, state: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m demo.sftp_server` in its own process; returns it and its port."""
    port_file = state / "port"
    args = [sys.executable, "-m", "demo.sftp_server", "--root", str(root), "--state-dir", str(state)]
    process = subprocess.Popen([*args, "--port-file", str(port_file)], cwd=REPO, stdout=subprocess.DEVNULL)
    while not port_file.exists():
        if process.poll() is not None:
            raise SystemExit("the SFTP server did not start")
        time.sleep(0.02)
    return process, int(port_file.read_text())


def plain_pass(label: str) -> float:
    """One pass over every client with plain functions and one connection; prints and returns seconds."""
    settings = load_settings()
    contracts = load_contracts(settings.clients_dir)
    started = time.perf_counter()
    totals: dict[str, int] = {}
    with sftp.connect(settings.sftp) as connection:
        for contract in contracts.values():
            result = sync.sync_client(connection, settings, contract, datetime.now(UTC))
            for outcome in sync.OUTCOMES:
                totals[outcome] = totals.get(outcome, 0) + result.count(outcome)
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.2f} s  {dict((k, v) for k, v in totals.items() if v)}")
    return seconds


def flow_passes() -> None:
    """Two `hourly-sync` runs on a fresh store: all new, then nothing new."""
    from flows.hourly_sync import hourly_sync

    for label in ("first pass (all new)", "second pass (nothing new)"):
        started = time.perf_counter()
        summary = cast(dict[str, Any], hourly_sync())
        seconds = time.perf_counter() - started
        totals = {o: sum(c[o] for c in summary["clients"].values()) for o in ("staged", "known")}
        print(f"flow hourly-sync, {label}: {seconds:.2f} s  {totals}, failed {len(summary['failed'])}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--flow", action="store_true", help="also time two hourly-sync flow runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp_name:
        tmp = Path(tmp_name)
        root, state, clients_dir = tmp / "root", tmp / "state", tmp / "clients"
        root.mkdir()
        clients_dir.mkdir()
        make_clients(clients_dir, root, args.clients, args.files)
        process, port = start_server(root, state)
        try:
            os.environ.update(
                {
                    "SFTP_IMPORT_HOME": str(tmp / "home"),
                    "SFTP_IMPORT_CLIENTS_DIR": str(clients_dir),
                    "SFTP_IMPORT_SFTP_HOST": "127.0.0.1",
                    "SFTP_IMPORT_SFTP_PORT": str(port),
                    "SFTP_IMPORT_SFTP_USERNAME": "sftp-import",
                    "SFTP_IMPORT_SFTP_KEY_FILE": str(state / "client_ed25519_key"),
                    "SFTP_IMPORT_SFTP_KNOWN_HOSTS": str(state / "known_hosts"),
                    "SFTP_IMPORT_SFTP_ROOT": "/",
                }
            )
            print(f"{args.clients} clients × {args.files} files")
            plain_pass("plain functions, first pass (all new)")
            plain_pass("plain functions, second pass (nothing new)")
            if args.flow:
                shutil.rmtree(tmp / "home")
                started = server.use_server(tmp / "home", server.free_port())
                try:
                    flow_passes()
                finally:
                    if started is not None:
                        server.stop(tmp / "home")
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
