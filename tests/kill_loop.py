"""The crash-consistency kill loop: SIGKILL sync, import, backfill and purge at random points, rerun each
to completion in a fresh process, and compare the end state with an uninterrupted run.

The scenario: three clients (the example contracts) on a real SFTP server on loopback (asyncssh),
each with several files: rows to merge across files, bad rows, a file rejected at import, a copy
under another name, an extension refused at arrival, an upload in progress. Its states are built
once by uninterrupted runs (uploads → sync → import → purge; backfill from the uploads), each
timed; a kill point copies its operation's start state into place, starts the operation in a fresh
process of its own group, SIGKILLs the group after a delay drawn from a seeded RNG across the
measured duration (measured again whenever a run ends before its kill: the machine's load varies),
checks that the store opens, reruns the operation in a fresh process and compares (`tests.kill_state`).

`python -m tests.kill_loop [--points N] [--seed S]` (`make soak`), or replay one kill point with
`--op OP --seed S --delay D`. It prints `N kill points, M iterations, X failures` and each failure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from demo.sftp_server import running_server
from deployments.postgres import Cluster, create_database, postgres_cluster
from schemas.contract import Contract, load_contracts
from schemas.samples import example_value, write_rows
from tasks.settings import load_settings
from tasks.store import close_store
from tests.conftest import EXAMPLE_CLIENTS, REPO
from tests.kill_state import BACKFILL_VOLATILE, VOLATILE, EndState, differences, end_state

OPS = ("sync", "import", "backfill", "purge")
START = {"sync": "uploads", "import": "synced", "backfill": "uploads", "purge": "imported"}
AGAIN = {"backfill": "backfill-again"}  # how ops rerun a killed operation, when not as it was
BACKFILLED = "northwind"  # a backfill names one client's files; the other clients must stay untouched
ROWS = 80  # per file: enough work for the kill to land inside the operation, not only around it


class StoreBackend(Protocol):
    """Where the store lives, and how a prepared state of it is kept and put back (a parameter of the
    loop: the DuckDB file in the home folder, or a PostgreSQL database named by SFTP_IMPORT_STORE_URL)."""

    name: str

    def env(self, home: Path) -> dict[str, str]:
        """The environment variables that point the platform at this store."""

    def keep(self, label: str) -> None:
        """Keep the store's current state as `label` (after the home folder was copied)."""

    def restore(self, label: str) -> None:
        """Put the state kept as `label` back (after the home folder was put back)."""


class DuckdbFile:
    """The DuckDB file in SFTP_IMPORT_HOME: it travels with the home folder, nothing more to do."""

    name = "duckdb"

    def env(self, home: Path) -> dict[str, str]:
        return {"SFTP_IMPORT_HOME": str(home)}

    def keep(self, label: str) -> None:
        return None

    def restore(self, label: str) -> None:
        return None


class PostgresDatabase:
    """A database of a PostgreSQL cluster (SFTP_IMPORT_STORE_URL): states kept as template databases."""

    name = "postgresql"

    def __init__(self, cluster: Cluster, database: str = "killed") -> None:
        self.cluster = cluster
        self.database = database
        create_database(cluster, database)

    def env(self, home: Path) -> dict[str, str]:
        return {"SFTP_IMPORT_HOME": str(home), "SFTP_IMPORT_STORE_URL": self.cluster.url(self.database)}

    def _copy(self, source: str, target: str) -> None:
        """`target` made anew as a copy of `source` (whose sessions, this process's pool among them, end)."""
        import psycopg

        close_store(self.cluster.url(self.database))
        with psycopg.connect(self.cluster.url(), autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
            con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [source])
            con.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')

    def keep(self, label: str) -> None:
        self._copy(self.database, f"{self.database}_{label}")

    def restore(self, label: str) -> None:
        self._copy(f"{self.database}_{label}", self.database)


def _csv_lines(contract: Contract, records: list[dict[str, Any]]) -> bytes:
    """Records as the client's CSV, plus three bad rows: an invalid email, no email, too few fields."""
    data = write_rows(contract, records, "csv")
    first = data.decode().splitlines()[1]
    email = str(records[0][contract.email_field.id])
    bad = [first.replace(email, "not-an-email"), first.replace(email, ""), email]
    return data + ("\n".join(bad) + "\n").encode()


def _records(contract: Contract, emails: range, variant: int = 0) -> list[dict[str, Any]]:
    """Valid contacts p<i>@<client>.example; another `variant` gives other values for the same emails."""
    email = contract.email_field.id
    return [
        {f.id: example_value(f, i + variant) for f in contract.fields} | {email: f"p{i}@{contract.id}.example"}
        for i in emails
    ]


def uploads(contract: Contract) -> dict[str, tuple[bytes, timedelta]]:
    """A client's files and their age: two overlapping lists with bad rows (the second as XML, with other
    values, exact duplicates and emails differing in case), its copy under another name, a file with
    the wrong header, an extension refused, an upload in progress (temporary name), one still changing."""
    first = _csv_lines(contract, _records(contract, range(ROWS)))
    later = _records(contract, range(ROWS // 2, ROWS + ROWS // 2), variant=1)
    email = contract.email_field.id
    cased = [r | {email: str(r[email]).upper()} for r in _records(contract, range(ROWS // 2, ROWS // 2 + 5), 2)]
    old, new = timedelta(hours=1), timedelta(0)
    return {
        f"{contract.id}-1.csv": (first, old),
        f"{contract.id}-2.xml": (write_rows(contract, later + later[:10] + cased, "xml"), old),
        f"{contract.id}-3.csv": (b"not,the,header\n1,2,3\n", old),
        f"{contract.id}-4-copy.csv": (first, old),
        f"{contract.id}-notes.txt": (b"hello\n", old),
        f"{contract.id}-5.csv.part": (first[:100], old),
        f"{contract.id}-6-changing.csv": (first, new),
    }


class ForkServer:
    """`tests.kill_ops` in a process of its own: each operation forked from it, already warm."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.kill_ops"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server died (exit {self.process.wait()})")
        return dict(json.loads(line))

    def start(self, op: str, now: datetime, files: dict[str, list[str]]) -> int:
        """Fork the operation; the pid (and process group) of its process."""
        assert self.process.stdin is not None
        request = {"op": op, "now": now.isoformat(), "files": files, "log": str(self.log)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return int(self._read()["pid"])

    def wait(self) -> tuple[int, float]:
        """The exit code of the operation started last (-9: SIGKILLed) and how long it ran."""
        ended = self._read()
        return int(ended["status"]), float(ended["seconds"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@dataclass(frozen=True)
class KillPoint:
    """One try: the operation, its seed and delay, whether the kill landed, what differed."""

    op: str
    seed: int
    delay: float
    killed: bool
    problems: list[str]

    def line(self) -> str:
        return f"FAILED {self.op} seed {self.seed} delay {self.delay:.3f}s: " + " | ".join(self.problems)


@dataclass
class KillLoop:
    """The scenario's states and references, the SFTP server and the fork server it runs them with."""

    work: Path
    backend: StoreBackend
    server: ForkServer
    now: datetime
    files: dict[str, list[str]]
    duration: dict[str, float] = field(default_factory=dict)
    reference: dict[str, EndState] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.work / "home"

    @property
    def sftp_root(self) -> Path:
        return self.work / "sftp"

    def keep(self, label: str) -> None:
        for part in (self.home, self.sftp_root):
            shutil.copytree(part, self.work / "states" / label / part.name, symlinks=True)
        self.backend.keep(label)

    def restore(self, label: str) -> None:
        """Put a kept state back in place (the home in full; the SFTP root's contents, as the server serves it)."""
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.copytree(self.work / "states" / label / "home", self.home, symlinks=True)
        for client_folder in self.sftp_root.iterdir():
            shutil.rmtree(client_folder)
        shutil.copytree(self.work / "states" / label / "sftp", self.sftp_root, symlinks=True, dirs_exist_ok=True)
        self.backend.restore(label)

    def run(self, op: str) -> tuple[int, float]:
        """Run an operation to its end in a fresh process: its exit code and how long it took."""
        self.server.start(op, self.now, self.files)
        return self.server.wait()

    def state(self, op: str) -> tuple[EndState, list[str]]:
        return end_state(load_settings(), self.sftp_root, BACKFILL_VOLATILE if op == "backfill" else VOLATILE)

    def prepare(self) -> None:
        """The states each operation starts from, and each operation's uninterrupted result and duration."""
        self.keep("uploads")
        for op in ("sync", "import", "purge", "backfill"):
            self.restore(START[op])
            code, self.duration[op] = self.run(op)
            if code != 0:
                raise RuntimeError(f"the uninterrupted {op} failed (exit {code}); see {self.server.log}")
            self.reference[op], problems = self.state(op)
            if problems:
                raise RuntimeError(f"the uninterrupted {op} is inconsistent: {problems}")
            if op in ("sync", "import"):
                self.keep({"sync": "synced", "import": "imported"}[op])

    def kill_point(self, op: str, seed: int, delay: float | None = None) -> KillPoint:
        """Kill the operation after a seeded random delay, check the store opens, rerun it, compare."""
        if delay is None:
            delay = random.Random(f"{op}-{seed}").uniform(0, self.duration[op])
        self.restore(START[op])
        pid = self.server.start(op, self.now, self.files)
        time.sleep(delay)
        with suppress(ProcessLookupError):  # it had ended: no kill point, but still checked
            os.killpg(pid, signal.SIGKILL)
        code, seconds = self.server.wait()
        killed = code == -signal.SIGKILL
        if code == 0:  # it ended before the delay: this run's time is the better measure of its duration
            self.duration[op] = seconds
        problems = []
        try:  # the store must open right after the kill (its content is checked after the rerun)
            with load_settings().store.read() as con:
                con.execute("SELECT count(*) FROM files").fetchall()
        except Exception as exc:
            problems.append(f"store did not open after the kill: {type(exc).__name__}: {exc}")
        code, _ = self.run(AGAIN.get(op, op))
        if code != 0:
            problems.append(f"the rerun failed (exit {code}); see {self.server.log}")
        else:
            found, problems_found = self.state(op)
            problems += problems_found + differences(self.reference[op], found)
        return KillPoint(op, seed, delay, killed, problems)


def _put(folder: Path, name: str, data: bytes, mtime: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    os.utime(folder / name, (mtime, mtime))


@contextmanager
def kill_loop(work: Path, backend: StoreBackend) -> Iterator[KillLoop]:
    """The prepared loop: server, fork server, scenario states and references. Sets the environment
    (restored after), so the harness reads the store through the same settings as the operations."""
    saved = os.environ.copy()
    (work / "sftp").mkdir(parents=True)
    now = datetime.now(UTC).replace(microsecond=0)
    contracts = load_contracts(EXAMPLE_CLIENTS)
    files: dict[str, list[str]] = {}
    for contract in contracts.values():
        made = uploads(contract)
        for name, (data, age) in made.items():
            _put(work / "sftp" / contract.directory, name, data, (now - age).timestamp())
        if contract.id == BACKFILLED:  # what is complete and accepted
            files[contract.id] = [n for n, (_, age) in made.items() if age and n.endswith((".csv", ".xml"))]
    try:
        with running_server(work / "sftp", work / "sftp-state") as sftp:
            os.environ.update(
                sftp.env()
                | backend.env(work / "home")
                | {"SFTP_IMPORT_CLIENTS_DIR": str(EXAMPLE_CLIENTS), "SFTP_IMPORT_SETTLE_SECONDS": "1"}
            )
            os.environ.pop("SFTP_IMPORT_SFTP_PASSWORD", None)
            server = ForkServer(work / "operations.log")
            try:
                (work / "home").mkdir()
                loop = KillLoop(work, backend, server, now, files)
                loop.prepare()
                yield loop
            finally:
                server.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Summary:
    """Kill points (the kill landed) per operation, iterations (tries), and the failures."""

    by_op: Counter[str] = field(default_factory=Counter)
    iterations: int = 0
    failures: list[KillPoint] = field(default_factory=list)

    @property
    def points(self) -> int:
        return self.by_op.total()

    def add(self, point: KillPoint) -> None:
        self.iterations += 1
        self.by_op[point.op] += point.killed
        if point.problems:
            self.failures.append(point)

    def line(self) -> str:
        per_op = ", ".join(f"{op} {self.by_op[op]}" for op in OPS)
        return f"{self.points} kill points, {self.iterations} iterations, {len(self.failures)} failures ({per_op})"


def run_points(loop: KillLoop, points: int, seed: int, progress_every: int = 0) -> Summary:
    """Kill the operations in turn until `points` kills landed (at most twice as many tries); with
    `progress_every`, print the summary line every that many iterations."""
    summary = Summary()
    while summary.points < points and summary.iterations < 2 * points:
        op = OPS[summary.iterations % len(OPS)]
        summary.add(loop.kill_point(op, seed + summary.iterations))
        if progress_every and summary.iterations % progress_every == 0:
            print(summary.line(), flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=int(os.environ.get("SOAK_POINTS", "500")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "1")))
    parser.add_argument("--op", choices=OPS, help="replay one kill point of this operation (with --seed, --delay)")
    parser.add_argument("--delay", type=float, help="the replayed kill point's delay in seconds")
    parser.add_argument("--work", type=Path, help="a new folder to work in (default: a temporary one, removed)")
    parser.add_argument("--store", choices=("duckdb", "postgresql"), default=os.environ.get("SOAK_STORE", "duckdb"))
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="kill-loop-"))
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            backend: StoreBackend = DuckdbFile()
            if args.store == "postgresql":
                backend = PostgresDatabase(stack.enter_context(postgres_cluster(durable=False)))
            loop = stack.enter_context(kill_loop(work, backend))
            print("uninterrupted: " + ", ".join(f"{op} {s:.2f}s" for op, s in loop.duration.items()), flush=True)
            summary = Summary()
            if args.op:
                summary.add(loop.kill_point(args.op, args.seed, args.delay))
            else:
                summary = run_points(loop, args.points, args.seed, progress_every=50)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    for failure in summary.failures:
        print(failure.line())
    print(f"{summary.line()}, {time.monotonic() - started:.0f} s")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
