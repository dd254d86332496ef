"""The hourly sync against a real SFTP server (the embedded asyncssh server; OpenSSH in test_sync_openssh)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from demo.sftp_server import ServerInfo, write_known_hosts
from schemas.contract import Contract, load_contracts
from tasks import sftp, store, sync, temporary_names
from tasks.settings import Settings, load_settings
from tests.conftest import EXAMPLE_CLIENTS
from tests.importing import record_arrival
from tests.sftp_fixtures import UPLOADING, SftpTarget, point_env_at, set_settle

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL

CONTRACTS: dict[str, Contract] = load_contracts(EXAMPLE_CLIENTS)
CSV = b"Email,First Name\nada@example.com,Ada\n"


def put(folder: Path, name: str, data: bytes = CSV, age: float = 3600) -> Path:
    """Write a file on the server with an mtime `age` seconds in the past (negative: in the future)."""
    path = folder / name
    path.write_bytes(data)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def run_sync(client: str, now: datetime | None = None, only_names: set[str] | None = None) -> sync.ClientSyncResult:
    settings = load_settings()
    with sftp.connect(settings.sftp) as connection:
        return sync.sync_client(connection, settings, CONTRACTS[client], now or datetime.now(UTC), only_names)


def files(client: str) -> dict[str, dict[str, Any]]:
    """The client's rows as `status` sees them, by name (the latest row per name)."""
    with load_settings().store.read() as con:
        rows = store.client_files(con, [client])[client]
    return {row["name"]: row for row in reversed(rows)}


def count(sql: str, params: list[Any]) -> int:
    with load_settings().store.read() as con:
        value: int = con.execute(sql, params).fetchone()[0]
        return value


def staged(settings: Settings, client: str) -> set[str]:
    folder = Path(settings.staging_url) / client
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def incoming(settings: Settings, client: str) -> list[Path]:
    folder = Path(settings.staging_url) / temporary_names.TMP_DIR / client
    return list(folder.iterdir()) if folder.exists() else []


# --- transport -------------------------------------------------------------------------------


def test_wrong_or_unknown_host_key_copies_nothing(
    asyncssh_target: SftpTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(asyncssh_target.client_dir("contoso"), "contacts.csv")
    other_key = tmp_path / "other" / "key"
    from demo.sftp_server import prepare_keys

    other_host_key, _ = prepare_keys(other_key.parent)
    wrong = tmp_path / "wrong_known_hosts"
    write_known_hosts(wrong, asyncssh_target.server.host, asyncssh_target.server.port, other_host_key)
    unknown = tmp_path / "unknown_known_hosts"
    unknown.write_text("")
    for known_hosts in (wrong, unknown):
        monkeypatch.setenv("SFTP_IMPORT_SFTP_KNOWN_HOSTS", str(known_hosts))
        with pytest.raises(sftp.HostKeyRejected, match="refusing to connect"):
            run_sync("contoso")
    monkeypatch.delenv("SFTP_IMPORT_SFTP_KNOWN_HOSTS")
    with pytest.raises(sftp.SftpConfigError, match="KNOWN_HOSTS is not set"):
        run_sync("contoso")
    assert not Path(load_settings().staging_url).exists()
    assert files("contoso") == {}


def test_password_login_and_remove(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from demo.sftp_server import running_server

    root = tmp_path / "root"
    (root / "contoso").mkdir(parents=True)
    put(root / "contoso", "old.csv")
    with running_server(root, tmp_path / "state", password="s3cret-pw") as server:
        point_env_at(monkeypatch, server, "/")
        monkeypatch.delenv("SFTP_IMPORT_SFTP_KEY_FILE")
        monkeypatch.setenv("SFTP_IMPORT_SFTP_PASSWORD", "s3cret-pw")
        settings = load_settings()
        assert "s3cret-pw" not in repr(settings) + repr(settings.sftp)
        with sftp.connect(settings.sftp) as connection:
            assert [f.name for f in connection.list_files("contoso")] == ["old.csv"]
            connection.remove("contoso", "old.csv")
            assert connection.list_files("contoso") == []
            with pytest.raises(FileNotFoundError):
                connection.remove("contoso", "old.csv")


# --- the rules ---------------------------------------------------------------------------------


def test_only_regular_files_directly_in_the_folder(asyncssh_target: SftpTarget) -> None:
    """A symlink to another client's file, a folder and a FIFO are never followed or staged."""
    secret = put(asyncssh_target.client_dir("fabrikam"), "secret.csv", b"Email\nceo@fabrikam.example\n")
    contoso = asyncssh_target.client_dir("contoso")
    put(contoso, "mine.csv")
    os.symlink(f"../fabrikam/{secret.name}", contoso / "link.csv")
    os.symlink(str(secret), contoso / "absolute-link.csv")
    (contoso / "folder.csv").mkdir()
    put(contoso / "folder.csv", "nested.csv")
    os.mkfifo(contoso / "pipe.csv")
    result = run_sync("contoso")
    assert [f.name for f in result.files] == ["mine.csv"]
    settings = load_settings()
    assert staged(settings, "contoso") == {"mine.csv"}
    assert set(files("contoso")) == {"mine.csv"}


def test_temporary_names_are_never_staged_nor_recorded(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    temporary = ["a.csv.filepart", "b.csv.part", "c.TMP", "~$d.xlsx", ".hidden.csv", ".e.csv.swp"]
    for name in [*temporary, "real.csv"]:
        put(folder, name)
    result = run_sync("contoso")
    assert result.count("skipped") == len(temporary)
    assert staged(load_settings(), "contoso") == {"real.csv"}
    assert set(files("contoso")) == {"real.csv"}


def test_growing_file_waits_until_settled(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    path = put(folder, "big.csv", CSV, age=0)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    assert run_sync("contoso", now=mtime).count("waiting") == 1
    assert files("contoso")["big.csv"]["status"] == "waiting"
    with path.open("ab") as handle:  # the upload goes on
        handle.write(b"bob@example.com,Bob\n" * 100)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    assert run_sync("contoso", now=mtime + timedelta(seconds=0.5)).count("waiting") == 1
    assert staged(load_settings(), "contoso") == set()
    later = datetime.now(UTC) + timedelta(seconds=5)  # nothing changed for longer than settle_seconds
    result = run_sync("contoso", now=later)
    assert [(f.name, f.outcome) for f in result.files] == [("big.csv", "staged")]
    row = files("contoso")["big.csv"]
    assert row["status"] == "staged" and row["size"] == path.stat().st_size
    assert row["received_at"] == later  # when the sync saw it complete
    assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert count("SELECT count(*) FROM waiting WHERE client = ?", ["contoso"]) == 0


def test_unchanged_for_settle_seconds_counts_even_with_a_future_mtime(asyncssh_target: SftpTarget) -> None:
    """A server clock ahead of ours: the file is taken once seen unchanged for settle_seconds."""
    put(asyncssh_target.client_dir("contoso"), "ahead.csv", age=-3600)
    t0 = datetime.now(UTC)
    assert run_sync("contoso", now=t0).count("waiting") == 1
    assert run_sync("contoso", now=t0 + timedelta(seconds=0.5)).count("waiting") == 1
    assert run_sync("contoso", now=t0 + timedelta(seconds=2)).count("staged") == 1


def test_reupload_under_a_used_name_is_ignored_and_recorded_once(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    put(folder, "contacts.csv")
    first = datetime.now(UTC).replace(second=0, microsecond=0)
    run_sync("contoso", now=first)
    put(folder, "contacts.csv", CSV + b"new@example.com,New\n", age=1800)
    for hour in range(1, 4):
        result = run_sync("contoso", now=first + timedelta(hours=hour))
        assert [f.outcome for f in result.files] == ["ignored"]
    assert count("SELECT count(*) FROM ignored WHERE client = ?", ["contoso"]) == 1
    with load_settings().store.read() as con:
        rows = store.client_files(con, ["contoso"])["contoso"]
    assert sorted(r["status"] for r in rows) == ["ignored", "staged"]
    ignored = next(r for r in rows if r["status"] == "ignored")
    assert f"already received on {first:%Y-%m-%d %H:%M} UTC" in ignored["reason"]
    assert "new name" in ignored["reason"]
    assert (Path(load_settings().staging_url) / "contoso" / "contacts.csv").read_bytes() == CSV


def test_same_bytes_under_a_new_name_are_flagged(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    put(folder, "monday.csv")
    run_sync("contoso")
    put(folder, "tuesday.csv")
    put(folder, "wednesday.csv")
    result = run_sync("contoso")
    assert result.count("known") == 1  # monday.csv, still on the server: not a re-upload
    assert result.summary()["same_content"] == {"tuesday.csv": "monday.csv", "wednesday.csv": "monday.csv"}
    assert files("contoso")["tuesday.csv"]["same_content_as"] == "monday.csv"
    assert files("contoso")["monday.csv"]["same_content_as"] is None


def test_same_bytes_twice_in_one_pass_are_flagged(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    put(folder, "a.csv")
    put(folder, "b.csv")
    put(folder, "c.csv", b"Email\nother@example.com\n")
    result = run_sync("contoso")
    assert result.summary()["same_content"] == {"b.csv": "a.csv"}
    assert files("contoso")["b.csv"]["same_content_as"] == "a.csv"


def test_unaccepted_extension_is_rejected_with_the_accepted_list(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    put(folder, "notes.txt", b"hello")
    put(folder, "UPPER.CSV")
    put(folder, "Book.XlsX", b"not really excel")
    put(folder, "no_extension")
    result = run_sync("contoso")
    assert {f.name: f.outcome for f in result.files} == {
        "notes.txt": "rejected",
        "UPPER.CSV": "staged",
        "Book.XlsX": "staged",
        "no_extension": "rejected",
    }
    reason = files("contoso")["notes.txt"]["reason"]
    assert ".txt" in reason and ".csv, .xls, .xlsx, .xml" in reason
    assert staged(load_settings(), "contoso") == {"UPPER.CSV", "Book.XlsX"}


def test_staged_file_without_ledger_row_is_overwritten(asyncssh_target: SftpTarget) -> None:
    """What a crash between rename and ledger row leaves behind is replaced by a whole copy."""
    put(asyncssh_target.client_dir("contoso"), "contacts.csv")
    settings = load_settings()
    leftover = Path(settings.staging_url) / "contoso" / "contacts.csv"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a fi")
    assert run_sync("contoso").count("staged") == 1
    assert leftover.read_bytes() == CSV
    assert incoming(settings, "contoso") == []


def collect(clients: list[str]) -> list[sync.ClientSyncResult]:
    """A pass's first two steps for these clients (list, read the ledger, classify, copy), nothing written."""
    settings = load_settings()
    results: list[sync.ClientSyncResult] = []
    with sftp.connect(settings.sftp) as connection:
        for client in clients:
            prepared = sync.prepare_alone(connection, settings, CONTRACTS[client], datetime.now(UTC))
            results.append(prepared.attempt())
            sync.copy_new(connection, settings, CONTRACTS[client], prepared, results[-1])
    return results


def test_copy_whose_ledger_write_never_happened_is_taken_again(asyncssh_target: SftpTarget) -> None:
    """A crash between a pass's copies and its ledger write: the next pass copies and records the file."""
    put(asyncssh_target.client_dir("contoso"), "contacts.csv")
    [lost] = collect(["contoso"])  # copied, then the process dies before writing
    assert lost.count("staged") == 1 and staged(load_settings(), "contoso") == {"contacts.csv"}
    assert files("contoso") == {}
    result = run_sync("contoso")
    assert [(f.name, f.outcome) for f in result.files] == [("contacts.csv", "staged")]
    assert files("contoso")["contacts.csv"]["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert (Path(load_settings().staging_url) / "contoso" / "contacts.csv").read_bytes() == CSV


def test_a_client_whose_write_fails_does_not_block_the_others(asyncssh_target: SftpTarget) -> None:
    """One transaction per client: a row another writer added since the read fails that client alone."""
    put(asyncssh_target.client_dir("contoso"), "contacts.csv")
    put(asyncssh_target.client_dir("contoso"), "growing.csv", age=0)
    put(asyncssh_target.client_dir("northwind"), "export.csv")
    results = collect(["contoso", "northwind"])
    settings = load_settings()
    with settings.store.write() as con:
        now = datetime.now(UTC)
        record_arrival(con, client="contoso", name="contacts.csv", status="staged", size=1, mtime=now, received_at=now)
        failed = sync.write_all(con, results)
    assert set(failed) == {"contoso"} and "ledger write failed" in failed["contoso"]
    assert files("northwind")["export.csv"]["status"] == "staged"
    assert set(files("contoso")) == {"contacts.csv"}  # the other writer's row; none of this pass's
    assert files("contoso")["contacts.csv"]["size"] == 1


def test_only_names_limits_the_sync(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    for name in ("a.csv", "b.csv", "c.csv"):
        put(folder, name, name.encode())
    result = run_sync("contoso", only_names={"b.csv", "gone.csv"})
    assert [f.name for f in result.files] == ["b.csv"]
    assert set(files("contoso")) == {"b.csv"}


def test_missing_client_folder_is_an_error(asyncssh_target: SftpTarget) -> None:
    with pytest.raises(FileNotFoundError, match="client folder not found"):
        run_sync("fabrikam")


@pytest.mark.slow
def test_a_thousand_files_in_one_folder(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("northwind")
    for i in range(1000):
        put(folder, f"contacts-{i:04d}.csv", b"Email\nuser%d@example.com\n" % i)
    started = time.monotonic()
    result = run_sync("northwind")
    elapsed = time.monotonic() - started
    assert result.count("staged") == 1000
    assert len(staged(load_settings(), "northwind")) == 1000
    assert count("SELECT count(*) FROM files WHERE client = ? AND status = 'staged'", ["northwind"]) == 1000
    assert run_sync("northwind").count("known") == 1000  # a second pass copies and records nothing
    assert elapsed < 60, elapsed


# --- a connection dropped mid-copy ----------------------------------------------------------------


def _start_server_process(root: Path, state: Path, port: int = 0, read_delay: float = 0.0) -> tuple[Any, int]:
    port_file = state / "port"
    port_file.unlink(missing_ok=True)
    args = [sys.executable, "-m", "demo.sftp_server", "--root", str(root), "--state-dir", str(state)]
    args += ["--port", str(port), "--port-file", str(port_file), "--read-delay", str(read_delay)]
    process = subprocess.Popen(args, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not port_file.exists():
        assert process.poll() is None, "the SFTP server process exited"
        assert time.monotonic() < deadline, "the SFTP server process did not start"
        time.sleep(0.02)
    return process, int(port_file.read_text())


@pytest.mark.slow
def test_connection_dropped_mid_copy(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, state = tmp_path / "root", tmp_path / "state"
    folder = root / "contoso"
    folder.mkdir(parents=True)
    put(folder, "a-small.csv")
    put(folder, "b-large.csv", os.urandom(4 * 1024 * 1024))
    process, port = _start_server_process(root, state, read_delay=0.05)
    try:
        server = ServerInfo(
            "127.0.0.1", port, "sftp-import", None, state / "client_ed25519_key", state / "known_hosts",
            state / "ssh_host_ed25519_key", root,
        )  # fmt: skip
        point_env_at(monkeypatch, server, "/")
        settings = load_settings()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                run_sync("contoso")
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=target)
        worker.start()
        deadline = time.monotonic() + 30
        small = Path(settings.staging_url) / "contoso" / "a-small.csv"
        while not (small.exists() and any(p.stat().st_size > 0 for p in incoming(settings, "contoso"))):
            assert time.monotonic() < deadline and worker.is_alive(), "the large copy never started"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        worker.join(timeout=60)
        assert errors, "the sync should fail when the server goes away"
        assert staged(settings, "contoso") == {"a-small.csv"}  # copied whole before the drop
        assert set(files("contoso")) == {"a-small.csv"}  # no row for the broken copy
        assert incoming(settings, "contoso") == []  # the partial temporary copy is gone

        process, _ = _start_server_process(root, state, port=port)  # same keys, same port
        result = run_sync("contoso")
        assert [(f.name, f.outcome) for f in result.files] == [("a-small.csv", "known"), ("b-large.csv", "staged")]
        copy = Path(settings.staging_url) / "contoso" / "b-large.csv"
        assert copy.read_bytes() == (folder / "b-large.csv").read_bytes()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


# --- the flow and the CLI (Prefect test harness) --------------------------------------------------


@pytest.mark.slow
def test_flow_isolates_a_client_whose_folder_is_missing(prefect_harness: None, asyncssh_target: SftpTarget) -> None:
    from prefect.states import State

    from flows.hourly_sync import hourly_sync

    put(asyncssh_target.client_dir("contoso"), "contacts.csv")
    put(asyncssh_target.client_dir("northwind"), "export.xml", b"<contacts/>")
    started = time.monotonic()
    state = cast("State[Any]", hourly_sync(return_state=True))
    assert state.is_failed()
    summary = state.result(raise_on_failure=False)
    assert isinstance(summary, dict)
    assert set(summary["failed"]) == {"fabrikam"}
    assert "FileNotFoundError" in summary["failed"]["fabrikam"]
    assert summary["clients"]["contoso"]["staged"] == 1
    assert summary["clients"]["northwind"]["staged"] == 1
    assert time.monotonic() - started < 15  # a missing folder is not retried
    assert files("contoso")["contacts.csv"]["status"] == "staged"


@pytest.mark.slow
def test_a_quiet_client_needs_no_task_and_a_busy_one_gets_its_own(
    prefect_harness: None, asyncssh_target: SftpTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every client's listing is classified in the pass; only a client with a file to copy (or samples to
    write) gets a task; the quiet ones are in the summary all the same, their waiting files recorded."""
    from prefect.states import State

    from flows.hourly_sync import hourly_sync

    set_settle(monkeypatch, UPLOADING)
    for contract in CONTRACTS.values():
        put(asyncssh_target.client_dir(contract.directory), "first.csv")
    assert hourly_sync(return_state=True).is_completed()  # everyone's file taken and samples written
    put(asyncssh_target.client_dir("contoso"), "second.csv")
    put(asyncssh_target.client_dir("northwind"), "growing.csv", age=0)  # still being uploaded
    state = cast("State[Any]", hourly_sync(return_state=True))
    assert state.is_completed(), state.message
    runs = asyncio.run(_task_run_counts(state.state_details.flow_run_id))
    assert {name for name in runs if name.startswith("sync-")} == {"sync-contoso"}, runs
    clients = state.result()["clients"]
    assert (clients["contoso"]["staged"], clients["contoso"]["known"]) == (1, 1)
    assert (clients["northwind"]["waiting"], clients["northwind"]["known"]) == (1, 1)
    assert (clients["fabrikam"]["known"], clients["fabrikam"]["listed"]) == (1, 1)
    assert files("northwind")["growing.csv"]["status"] == "waiting"


async def _task_run_counts(flow_run_id: Any, last: str = "update-overview") -> dict[str, int]:
    """The flow run's task runs by name (how often each ran), once the server has recorded the pass's last
    task (`last`, a pass that completes: update-overview) ended: it records task runs from their events, a
    moment after they happen."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 30
    async with get_client() as client:
        while True:
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            ended = [t for t in task_runs if t.name.startswith(last) and t.state and t.state.is_final()]
            if ended or time.monotonic() > deadline:
                return {task_run.name: task_run.run_count for task_run in task_runs}
            await asyncio.sleep(0.1)


@pytest.mark.slow
def test_flow_retries_a_server_that_is_down_until_it_is_back(
    prefect_harness: None, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.states import State

    from flows.hourly_sync import hourly_sync

    root, state = tmp_path / "root", tmp_path / "state"
    (root / "contoso").mkdir(parents=True)
    put(root / "contoso", "contacts.csv")
    process, port = _start_server_process(root, state)  # makes the keys and known_hosts
    process.terminate()
    process.wait(timeout=10)  # the server is down when the sync starts
    server = ServerInfo(
        "127.0.0.1", port, "sftp-import", None, state / "client_ed25519_key", state / "known_hosts",
        state / "ssh_host_ed25519_key", root,
    )  # fmt: skip
    point_env_at(monkeypatch, server, "/")
    restarted: list[Any] = []

    def come_back() -> None:
        time.sleep(1.0)  # after the first attempt failed, before its retry (2 s later)
        restarted.append(_start_server_process(root, state, port=port)[0])

    comeback = threading.Thread(target=come_back)
    comeback.start()
    try:
        run = cast("State[Any]", hourly_sync(client="contoso", return_state=True))
        assert run.is_completed(), run.message
        assert run.result()["clients"]["contoso"]["staged"] == 1
        assert files("contoso")["contacts.csv"]["status"] == "staged"
        runs = asyncio.run(_task_run_counts(run.state_details.flow_run_id))
        assert runs["check-sftp"] >= 2, runs  # the pass's login check failed first and was retried
        assert runs["sync-contoso"] == 1, runs  # the client's sync ran once the server was back
    finally:
        comeback.join()
        for server_process in restarted:
            server_process.terminate()
            server_process.wait(timeout=10)


@pytest.mark.slow
def test_cli_sync_then_status_json(
    prefect_harness: None,
    asyncssh_target: SftpTarget,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.cli import main

    for client in ("contoso", "fabrikam", "northwind"):
        put(asyncssh_target.client_dir(client), f"{client}.csv")
    put(asyncssh_target.client_dir("contoso"), "growing.csv", age=0)
    set_settle(monkeypatch, UPLOADING)
    assert main(["sync"]) == 0
    capsys.readouterr()
    assert main(["sync", "--client", "contoso"]) == 0
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_client = {c["id"]: {f["name"]: f["status"] for f in c["files"]} for c in report["clients"]}
    assert by_client["fabrikam"] == {"fabrikam.csv": "staged"}
    assert by_client["northwind"] == {"northwind.csv": "staged"}
    assert by_client["contoso"]["contoso.csv"] == "staged"
    assert by_client["contoso"]["growing.csv"] == "waiting"


NFD, NFC = "cafe\u0301.csv", "caf\u00e9.csv"  # one name to the client: decomposed (a Mac) and composed


def test_the_name_rule_compares_names_in_nfc(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    put(folder, NFD)
    assert [f.outcome for f in run_sync("contoso").files] == ["staged"]
    (folder / NFD).unlink()
    put(folder, NFC, CSV + b"bo@example.com,Bo\n")  # the same name sent again from another system
    (result,) = run_sync("contoso").files
    assert (result.name, result.outcome) == (NFC, "ignored") and "new name" in (result.reason or "")


def test_two_forms_of_one_name_in_one_pass_are_taken_once(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    put(folder, NFD)
    put(folder, NFC, CSV + b"bo@example.com,Bo\n")
    outcomes = sorted(f.outcome for f in run_sync("contoso").files)
    assert outcomes == ["ignored", "staged"]


def test_a_name_taken_long_ago_is_refused_however_many_files_came_since(asyncssh_target: SftpTarget) -> None:
    """The sync asks the ledger only about the names it listed: a name taken long ago (purged since, in
    another Unicode form, behind 2,000 newer rows) is still refused, and new bytes equal to that old
    file's are still matched to it."""
    long_ago, lately = datetime.now(UTC) - timedelta(days=400), datetime.now(UTC) - timedelta(days=1)
    newer = [{"name": f"later-{n:04}.csv", "status": "imported", "size": 1, "mtime": lately} for n in range(2000)]
    with load_settings().store.write() as con, store.transaction(con):
        sha = hashlib.sha256(CSV).hexdigest()
        record_arrival(con, client="contoso", received_at=long_ago, name=NFD, status="imported", size=1,
                       mtime=long_ago, sha256=sha)  # fmt: skip
        store.record_purge(con, "contoso", [], [], [NFD], long_ago + timedelta(days=30))
        store.record_arrivals(con, "contoso", lately, newer)
    folder = asyncssh_target.client_dir("contoso")
    put(folder, NFC, CSV + b"bo@example.com,Bo\n")  # the old name again, composed this time
    put(folder, "fresh.csv", CSV)  # the old file's bytes under a new name
    result = run_sync("contoso")
    assert {f.name: (f.outcome, f.same_content_as) for f in result.files} == {
        NFC: ("ignored", None),
        "fresh.csv": ("staged", NFD),
    }
    with load_settings().store.read() as con:
        ledger = store.sync_ledgers(con, {"contoso": [NFC, "later-0001.csv"], "northwind": [NFC]})
    assert sorted(ledger["contoso"].known) == sorted([NFC, "later-0001.csv"])  # only what was asked
    assert ledger["contoso"].known[NFC].name == NFD and ledger["northwind"].known == {}
    assert ledger["contoso"].first_by_hash == {}  # every listed name known: nothing to copy, no hashes read


ODD_NAMES = ("with space.csv", 'quote\'s "x".csv', "line\nbreak.csv", "-rf.csv", "a..b.csv", "x" * 240 + ".csv")


def test_odd_names_are_staged_inside_the_clients_staging_folder(asyncssh_target: SftpTarget) -> None:
    folder = asyncssh_target.client_dir("contoso")
    for name in ODD_NAMES:
        put(folder, name)
    result = run_sync("contoso")
    assert sorted(f.name for f in result.files if f.outcome == "staged") == sorted(ODD_NAMES)
    staging = (Path(load_settings().staging_url) / "contoso").resolve()
    staged = {p.name for p in staging.iterdir()}
    assert staged == set(ODD_NAMES) and all((staging / n).resolve().parent == staging for n in ODD_NAMES)
