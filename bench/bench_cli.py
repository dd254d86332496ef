"""Wall time of the real `sftp-import` commands with 1,000 contracts: `--help`, `status`, and two
flow commands on the home's resident Prefect server: `import --client X --now` of one small staged
file and `sync --client X` with nothing new (10 known files on the embedded SFTP server).

Builds a clients folder (copies of examples/clients/northwind.yaml with new ids) and a store
(ledger rows, waiting files, ignored re-uploads and row errors for every tenth client) in a temp
folder, starts the resident server (untimed, as it runs all day), then runs the installed command
as a subprocess, interleaved, each against the issue's target where it sets one. Before each run of
`status (one contract edited)` one contract's `name` is rewritten (new bytes: that file is parsed
again; a mere touch would not be), before `status (every contract edited)` all 1,000 are (the
contracts cache rebuilt from scratch); `import` stages a new one-row file before each run (untimed).
Run: `.venv/bin/python -m bench.bench_cli` (part of `python -m bench`; BENCH_RUNS runs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.measure import Line, runs
from demo.sftp_server import running_server
from deployments import server
from tasks import store
from tasks.errors import RowError
from tasks.settings import load_settings
from tasks.staging import staged_url

TEMPLATE = Path(__file__).resolve().parents[1] / "examples" / "clients" / "northwind.yaml"
COMMAND = Path(sys.executable).with_name("sftp-import")  # the entry point installed in this venv
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
NAME = re.compile(r"^name: .*$", re.MULTILINE)  # a contract's display name
CSV = (
    b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
    b"{n}@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\n"
)


def make_contracts(clients_dir: Path, count: int) -> list[str]:
    """`count` copies of northwind's contract with ids client-0000…; returns the ids."""
    template = TEMPLATE.read_text(encoding="utf-8")
    clients_dir.mkdir()
    ids = [f"client-{i:04d}" for i in range(count)]
    for client in ids:
        (clients_dir / f"{client}.yaml").write_text(template.replace("id: northwind", f"id: {client}"), "utf-8")
    return ids


def fill_store(db: Path, clients: list[str]) -> None:
    """Ledger rows for every tenth client (see `add_files`), through the store's own functions."""
    with store.open_store(db) as con:
        for client in clients[::10]:
            add_files(con, client)


def add_files(con: Any, client: str) -> None:
    """3 imported files (30 row errors each), 1 staged, 1 rejected, 1 waiting and 1 ignored re-upload."""
    names = [f"contacts-{day}.csv" for day in range(4)]
    arrivals = [{"name": name, "status": "staged", "size": 1000, "mtime": NOW, "sha256": name} for name in names]
    arrivals.append({"name": "notes.pdf", "status": "rejected", "size": 5, "mtime": NOW, "reason": "not accepted"})
    store.record_arrivals(con, client, NOW - timedelta(days=1), arrivals)
    for name in names[:3]:
        result = store.FileResult(
            client,
            name,
            store.FileStatus.IMPORTED,
            f"{client}-{name}",
            NOW,
            format="csv",
            encoding="utf-8",
            delimiter=",",
            stats={"rows_read": 500, "rows_imported": 470, "rows_rejected": 30},
        )
        store.record_file_result(con, result)
        store.record_row_errors(con, client, name, [RowError(line, "Amount", "not a decimal") for line in range(2, 32)])
    store.record_waiting(con, client, "late.csv", 10, NOW, NOW)
    store.record_ignored(con, client, names[0], 999, NOW, NOW, "name already used")


def stage_one(client: str, number: int) -> None:
    """A staged one-row file with its ledger row, as the sync leaves it."""
    settings = load_settings()  # this process's environment names the benchmark's home
    name = f"one-{number}.csv"
    data = CSV.replace(b"{n}", str(number).encode())
    path = Path(staged_url(settings.staging_url, client, name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with store.open_store(settings.db_path) as con:
        store.record_arrivals(con, client, NOW, [{"name": name, "status": "staged", "size": len(data), "mtime": NOW}])


def wall(args: list[str], env: dict[str, str], before: Callable[[], None] | None = None) -> float:
    """Seconds one run of the command takes (it must succeed); `before` runs first, untimed."""
    if before is not None:
        before()
    started = time.perf_counter()
    subprocess.run([str(COMMAND), *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


STATUS_TARGET = 0.5  # seconds, the issue's: with and without contracts changed since the last call
TARGETS = {
    "--help": 0.3,
    "status": STATUS_TARGET,
    "status (one contract edited)": STATUS_TARGET,
    "status (every contract edited)": STATUS_TARGET,
}


def lines(contracts: int = 1000) -> list[Line]:
    """Build the folder and the store, time each command interleaved; a line per command (its target the reference)."""
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        clients_dir, home, sftp_root = Path(folder, "clients"), Path(folder, "home"), Path(folder, "sftp")
        clients = make_contracts(clients_dir, contracts)
        fill_store(home / "store.duckdb", clients)
        importer, syncer = clients[1], clients[2]
        (sftp_root / syncer).mkdir(parents=True)
        for day in range(10):
            (sftp_root / syncer / f"known-{day}.csv").write_bytes(CSV.replace(b"{n}", b"k"))
            os.utime(sftp_root / syncer / f"known-{day}.csv", (time.time() - 3600, time.time() - 3600))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # the resident server
        env |= {"SFTP_IMPORT_HOME": str(home), "SFTP_IMPORT_CLIENTS_DIR": str(clients_dir)}
        env |= {"PREFECT_LOGGING_LEVEL": "WARNING"}  # the commands' run logs are not the table
        saved = dict(os.environ)
        os.environ.update(env)
        staged, edits = iter(range(1_000_000)), iter(range(1_000_000))

        def edit(files: list[Path]) -> Callable[[], None]:
            """Before a run: give the contracts a new `name`, so their bytes change (untimed)."""

            def rewrite() -> None:
                name = f"name: Client {next(edits)}"
                for file in files:
                    file.write_text(NAME.sub(name, file.read_text(encoding="utf-8"), count=1), encoding="utf-8")

            return rewrite

        cases: dict[str, tuple[list[str], Callable[[], None] | None]] = {
            "--help": (["--help"], None),
            "status": (["status"], None),
            "status (one contract edited)": (["status"], edit([clients_dir / f"{clients[-1]}.yaml"])),
            "status (every contract edited)": (["status"], edit([clients_dir / f"{c}.yaml" for c in clients])),
            "import, one small file": (
                ["import", "--client", importer, "--now"],
                lambda: stage_one(importer, next(staged)),
            ),
            "sync, nothing new": (["sync", "--client", syncer], None),
        }
        found = {
            label: Line("cli", f"{label} ({contracts:,} contracts)" if "status" in label else label,
                        f"target {TARGETS[label]} s" if label in TARGETS else "-",
                        target=1.0 if label in TARGETS else None,
                        target_note=f"≤ {TARGETS[label]} s" if label in TARGETS else "")
            for label in cases
        }  # fmt: skip
        with running_server(sftp_root, Path(folder, "sftp-state")) as sftp:
            env |= sftp.env()
            wall(["status"], env)  # a fresh home: whatever is cached is built here
            server.start(home, port=server.free_port())
            try:
                wall(["sync", "--client", syncer], env)  # the 10 files become known
                for _ in range(runs(5)):
                    for label, (args, before) in cases.items():
                        found[label].add(wall(args, env, before), TARGETS.get(label, 0.0))
            finally:
                server.stop(home)
                os.environ.clear()
                os.environ.update(saved)
    return list(found.values())


if __name__ == "__main__":
    for line in lines():
        print(line.row())
