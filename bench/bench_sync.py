"""Benchmark: the sync against a local OpenSSH sshd (host key checked), two lines of `python -m bench`.

1. Transfer: one client's folder of 100 × 200 KB files, and of 5 × 20 MB, copied to staging by the
   sync's transport (connect, list, copy each file under a temporary name with size and sha256
   checked, rename) against `sftp -b` getting the same files with the same key, run by run.
2. The steady hourly pass: the `hourly-sync` flow on a resident Prefect server over 1,000 client
   folders × 10 files the ledger knows (nothing new), then the same with 1,000,000 ledger rows; part
   of each: the read of the listed names' ledger rows at the start of the pass, timed on its own.
   An hourly pass starts on a server that has long recorded the previous one: each timed pass starts
   once the Prefect server has gone quiet (`_server_quiet`; the first pass leaves it busy recording
   its 1,000 task runs for 5–7 s), shown as the part `server_settling`.
Needs sshd (Debian's openssh-server) and sftp; without them the lines are skipped, said so.
Run: `.venv/bin/python -m bench.bench_sync` (BENCH_RUNS runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import Line, runs
from demo.openssh import running_sshd, sshd_binary
from demo.sftp_server import ServerInfo

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "examples" / "clients" / "northwind.yaml"
SETS = {"100 × 200 KB": (100, 200 * 1024), "5 × 20 MB": (5, 20 * 1024 * 1024)}
CLIENTS, KNOWN_FILES, LEDGER_ROWS = 1000, 10, 1_000_000
SETTLED = 1_700_000_000  # the files' mtime: long settled


def _point_at(server: ServerInfo, home: Path, clients_dir: Path) -> None:
    """This process's platform settings: the home, the contracts, the sshd (its root an absolute path)."""
    os.environ.update(server.env())
    os.environ.update({"SFTP_IMPORT_SFTP_ROOT": str(server.root), "SFTP_IMPORT_HOME": str(home),
                       "SFTP_IMPORT_CLIENTS_DIR": str(clients_dir)})  # fmt: skip
    os.environ.update({"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_LOGGING_TO_API_ENABLED": "false"})


def _make_contracts(clients_dir: Path, ids: list[str]) -> None:
    """Copies of northwind's contract under the given ids."""
    clients_dir.mkdir(parents=True, exist_ok=True)
    template = TEMPLATE.read_text(encoding="utf-8")
    for client in ids:
        (clients_dir / f"{client}.yaml").write_text(template.replace("id: northwind", f"id: {client}"), "utf-8")


def ours_transfer(client: str) -> float:
    """Seconds for the sync's transport to copy every file of the client's folder to staging."""
    from schemas.contract import load_contracts
    from tasks import sftp
    from tasks.settings import load_settings

    settings = load_settings()
    contract = load_contracts(settings.clients_dir)[client]
    started = time.perf_counter()
    with sftp.connect(settings.sftp) as connection:
        listed = connection.list_files(contract.directory)
        for _, copied in connection.copy_to_staging(contract.directory, listed, settings.staging_url, client):
            assert copied is not None
    return time.perf_counter() - started


def sftp_transfer(server: ServerInfo, folder: Path, target: Path) -> float:
    """Seconds for `sftp -b` to get the same files, one `get` per file, into `target`."""
    batch = target.parent / "batch"
    batch.write_text(f"lcd {target}\ncd {folder}\n" + "".join(f"get {p.name}\n" for p in sorted(folder.iterdir())))
    target.mkdir()
    command = ["sftp", "-q", "-b", str(batch), "-i", str(server.key_file), "-P", str(server.port),
               "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               f"{server.username}@{server.host}"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def transfer_lines(server: ServerInfo, work: Path) -> list[Line]:
    """The transfer lines: ours against `sftp -b`, interleaved, fresh staging each run."""
    lines = []
    ids = [f"transfer-{n}" for n in range(len(SETS))]
    _make_contracts(work / "clients", ids)
    for client, (label, (count, size)) in zip(ids, SETS.items(), strict=True):
        folder = server.root / client
        folder.mkdir()
        for n in range(count):
            (folder / f"contacts-{n:03}.csv").write_bytes(os.urandom(size))
            os.utime(folder / f"contacts-{n:03}.csv", (SETTLED, SETTLED))
        line = Line("sync", f"transfer {label}", "sftp -b", target=1.25, target_note="≥ 0.8× sftp's throughput")
        for run in range(runs(5)):
            shutil.rmtree(work / "home" / "staging", ignore_errors=True)
            os.sync()  # no dirty pages of the run before to write back during the next
            ours = ours_transfer(client)
            os.sync()
            line.add(ours, sftp_transfer(server, folder, work / f"sftp-{client}-{run}"))
        lines.append(line)
    return lines


def _known_folders(server: ServerInfo, clients: list[str]) -> None:
    """Each client's folder with 10 small settled files."""
    for client in clients:
        folder = server.root / client
        folder.mkdir()
        for n in range(KNOWN_FILES):
            (folder / f"contacts-{n:02}.csv").write_bytes(b"Email\na@x.io\n")
            os.utime(folder / f"contacts-{n:02}.csv", (SETTLED, SETTLED))


def _known_ledger(clients: list[str]) -> None:
    """The ledger rows of the folders' files (imported): every file is known."""
    from tasks import store
    from tasks.settings import load_settings

    mtime = datetime.fromtimestamp(SETTLED, UTC)
    known = [{"name": f"contacts-{n:02}.csv", "status": "imported", "size": 13, "mtime": mtime}
             for n in range(KNOWN_FILES)]  # fmt: skip
    with store.open_store(load_settings().db_path) as con, store.transaction(con):
        for client in clients:
            store.record_arrivals(con, client, mtime, known)


def _old_ledger_rows(clients: list[str], count: int) -> None:
    """`count` older ledger rows spread over the clients, in bulk (the store's insert would take minutes)."""
    from tasks import store
    from tasks.settings import load_settings

    mtime = datetime.fromtimestamp(SETTLED, UTC)
    with store.open_store(load_settings().db_path) as con:
        con.execute(
            "INSERT INTO files (client, name, name_key, status, size, mtime, received_at) "
            "SELECT 'client-' || lpad((i % ?)::VARCHAR, 4, '0'), 'old-' || i || '.csv', 'old-' || i || '.csv', "
            "'imported', 13, ?, ? "
            "FROM range(?) t(i)",
            [len(clients), mtime, mtime, count],
        )


def ledger_read(clients: list[str]) -> float:
    """Seconds of the pass's store read alone: the ledger of the names every client listed (its folder's
    10 files), samples digests and due results."""
    from tasks import store
    from tasks.settings import load_settings

    listed = {client: [f"contacts-{n:02}.csv" for n in range(KNOWN_FILES)] for client in clients}
    started = time.perf_counter()
    with load_settings().store.read() as con:
        store.sync_ledgers(con, listed)
        store.samples_digests(con, clients)
        store.clients_with_pending_results(con, clients)
    return time.perf_counter() - started


def _cpu_seconds(group: int) -> float:
    """CPU seconds used so far by the processes of a process group (the Prefect server and its children)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:  # pgrp; utime and stime follow at 12 and 13
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _server_quiet(home: Path, limit: float = 120.0) -> float:
    """Wait until the Prefect server uses under 10 % of a core over a second (at most `limit` s): seconds waited."""
    from deployments import server as prefect_server

    found = prefect_server.running(home)
    if found is None:
        return 0.0
    began = time.perf_counter()
    used = _cpu_seconds(found.pid)
    while time.perf_counter() - began < limit:
        time.sleep(1.0)
        now = _cpu_seconds(found.pid)
        if now - used < 0.1:
            break
        used = now
    return time.perf_counter() - began


def steady_lines(server: ServerInfo, work: Path) -> list[Line]:
    """The steady pass (the flow, nothing new) at 10,000 then 1,000,000 ledger rows, against the 10 s target."""
    from deployments import server as prefect_server

    clients = [f"client-{i:04}" for i in range(CLIENTS)]
    _make_contracts(work / "clients", clients)
    _known_folders(server, clients)
    _known_ledger(clients)
    started = prefect_server.use_server(work / "home", prefect_server.free_port())
    lines = []
    try:
        from flows.hourly_sync import hourly_sync

        began = time.perf_counter()
        hourly_sync()  # untimed: writes every client's samples folder once, as the first pass of a day does
        print(f"  first pass over {CLIENTS:,} clients (samples folders written): {time.perf_counter() - began:.0f} s")
        for label, extra in (("10,000 ledger rows", 0), ("1,000,000 ledger rows", LEDGER_ROWS - CLIENTS * KNOWN_FILES)):
            _old_ledger_rows(clients, extra)
            line = Line("hourly", f"steady pass, {label}", "target 10 s", target=1.0, target_note="≤ 10 s")
            for _ in range(min(runs(5), 3)):  # a pass is long: three runs at most
                waited = _server_quiet(work / "home")
                began = time.perf_counter()
                summary = hourly_sync()
                seconds = time.perf_counter() - began
                assert not summary["failed"], summary["failed"]
                line.add(seconds, 10.0, ledger_read=ledger_read(clients), server_settling=waited)
            lines.append(line)
    finally:
        if started is not None:
            prefect_server.stop(work / "home")
    return lines


def lines() -> list[Line]:
    """Both sync lines, or none when OpenSSH is not installed."""
    sshd = sshd_binary()
    if sshd is None or shutil.which("sftp") is None:
        print("  sync lines skipped: OpenSSH's sshd and sftp are not installed (Debian: openssh-server)")
        return []
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as name:
        work = Path(name)
        (work / "state").mkdir()
        (work / "root").mkdir()
        with running_sshd(sshd, work / "state", work / "root") as server:
            _point_at(server, work / "home", work / "clients")
            found = transfer_lines(server, work)
            shutil.rmtree(work / "clients")
            return found + steady_lines(server, work)


if __name__ == "__main__":
    for line in lines():
        print(line.row())
