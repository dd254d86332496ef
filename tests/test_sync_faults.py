"""The sync under SFTP and disk faults, each produced by a real server or a real limit: a server that
stops answering (an asyncssh handler blocked on an event; sshd's session SIGSTOPped), a server killed
while it lists (sshd's session SIGKILLed), a refused login, a file deleted between listing and copy,
a file rewritten while it is copied, and a full disk (RLIMIT_FSIZE) while staging.

A server killed mid-copy is in test_sync.py (`test_connection_dropped_mid_copy`). Hangs are caught by
the `timeout` marks (pytest-timeout): each stall must give up after SFTP_IMPORT_SFTP_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fsspec.asyn import sync as fsspec_sync

from demo.sftp_server import prepare_keys, running_server
from tasks import sftp, sync
from tasks.errors import Fault, fault_of
from tasks.settings import load_settings
from tests.sftp_faults import Faults, signal_all, sshd_sessions, unread_bytes
from tests.sftp_fixtures import SftpTarget, point_env_at
from tests.test_sync import CONTRACTS, CSV, _task_run_counts, files, incoming, put, run_sync, staged

REPO = Path(__file__).resolve().parents[1]


# --- a server that stops answering ------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_stalled_listing_gives_up_and_the_next_client_is_synced(faulty_target: SftpTarget, faults: Faults) -> None:
    put(faulty_target.client_dir("contoso"), "contacts.csv")
    put(faulty_target.client_dir("northwind"), "export.csv")
    faults.stall_in = "/contoso"
    with pytest.raises(sftp.SftpTimeout, match=r"did not answer within 1 s while listing /contoso") as raised:
        run_sync("contoso")
    assert faults.stalled.is_set()
    assert fault_of(raised.value) is Fault.TRANSIENT  # the task retries it later
    assert run_sync("northwind").count("staged") == 1  # the next client, on its own connection
    assert files("contoso") == {} and staged(load_settings(), "contoso") == set()
    faults.stall_in = None
    assert run_sync("contoso").count("staged") == 1  # the server answers again: the next pass takes it


@pytest.mark.timeout(60)
def test_a_stall_mid_copy_leaves_no_partial_file_and_the_next_pass_copies_it_whole(
    faulty_target: SftpTarget, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    folder = faulty_target.client_dir("contoso")
    put(folder, "a-small.csv")
    large = put(folder, "b-large.csv", os.urandom(3 * sftp.CHUNK))
    faults.stall_in, faults.stall_from = "b-large.csv", sftp.CHUNK  # the first MiB arrives, then silence
    # the small file is copied beside the large one on the same SFTP channel, which the server serves in
    # order: it is staged whole before the stall, or its last request waits behind the stalled read
    with pytest.raises(sftp.SftpTimeout, match=r"while (reading|checking) /contoso/(b-large|a-small)\.csv"):
        run_sync("contoso")
    settings = load_settings()
    taken = staged(settings, "contoso")
    assert taken <= {"a-small.csv"} and set(files("contoso")) == taken  # no row, no staged file for the stalled copy
    assert incoming(settings, "contoso") == []  # its temporary copy is gone
    gc.collect()  # the abandoned reads' tasks end here: none is reported as an error
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    faults.stall_in = None
    result = run_sync("contoso")
    small = "known" if taken else "staged"
    assert [(f.name, f.outcome) for f in result.files] == [("a-small.csv", small), ("b-large.csv", "staged")]
    assert (Path(settings.staging_url) / "contoso" / "b-large.csv").read_bytes() == large.read_bytes()


@pytest.mark.timeout(60)
def test_a_stall_among_parallel_copies_stages_the_files_before_it_and_discards_those_in_flight(
    faulty_target: SftpTarget, faults: Faults
) -> None:
    """Files are copied several at once but staged in order: the error comes at the turn of a stalled file
    (c.csv, or one sharing its SFTP channel, which the server serves in order), after the files before it
    were recorded; the copies then in flight leave nothing behind, so staging and ledger agree."""
    folder = faulty_target.client_dir("contoso")
    names = [f"{letter}.csv" for letter in "abcdef"]
    for name in names:
        put(folder, name, os.urandom(2 * sftp.CHUNK))
    faults.stall_in = "c.csv"
    with pytest.raises(sftp.SftpTimeout, match=r"while (reading|opening|checking) /contoso/[a-c]\.csv"):
        run_sync("contoso")
    settings = load_settings()
    taken = staged(settings, "contoso")
    assert taken == set(files("contoso")) and taken == set(names[: len(taken)]) and "c.csv" not in taken
    assert incoming(settings, "contoso") == []
    faults.stall_in = None
    result = run_sync("contoso")
    assert [f.outcome for f in result.files] == ["known"] * len(taken) + ["staged"] * (len(names) - len(taken))
    assert all((Path(settings.staging_url) / "contoso" / n).read_bytes() == (folder / n).read_bytes() for n in names)


@pytest.mark.timeout(60)
def test_shared_connections_serve_client_after_client_and_one_that_failed_is_never_lent_again(
    faulty_target: SftpTarget, faults: Faults
) -> None:
    for client in ("contoso", "northwind"):
        put(faulty_target.client_dir(client), f"{client}.csv")
    connections = sftp.Connections(load_settings().sftp)
    try:
        with connections.lend() as first:
            assert [f.name for f in sync.list_folder(first, CONTRACTS["northwind"])] == ["northwind.csv"]
        faults.stall_in = "/contoso"
        with pytest.raises(sftp.SftpTimeout), connections.lend() as stalled:
            sync.list_folder(stalled, CONTRACTS["contoso"])
        assert stalled is first and not stalled.is_open()  # reused, then closed by its client's failure
        faults.stall_in = None
        with connections.lend() as fresh:
            assert fresh is not first
            assert [f.name for f in sync.list_folder(fresh, CONTRACTS["contoso"])] == ["contoso.csv"]
        with connections.lend() as again:
            assert again is fresh
            client = again.fs._client

            async def _drop() -> None:  # the connection ends while idle (a server restart, an idle timeout)
                client.abort()
                await client.wait_closed()

            fsspec_sync(again.fs.loop, _drop)
        with connections.lend() as reopened:
            assert reopened is not fresh and reopened.is_open()
    finally:
        connections.close()
    assert not reopened.is_open()
    # closed here, each is never closed again at garbage collection (sshfs's finalizer waits ≥ 1 s a filesystem)
    assert [sftp.sshfs_finalizers(c.fs) for c in (first, fresh, reopened)] == [[], [], []]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_flow_gives_up_on_a_stalled_listing_goes_on_and_the_clients_task_takes_the_file(
    prefect_harness: None, faulty_target: SftpTarget, faults: Faults
) -> None:
    from prefect.states import State

    from flows.hourly_sync import hourly_sync

    for contract in CONTRACTS.values():
        put(faulty_target.client_dir(contract.directory), f"{contract.id}.csv")
    faults.stall_in, faults.stall_once = f"/{CONTRACTS['contoso'].directory}", True
    state = cast("State[Any]", hourly_sync(return_state=True))
    assert state.is_completed(), state.message
    assert faults.stalled.is_set()
    assert all(counts["staged"] == 1 for counts in state.result()["clients"].values())
    runs = asyncio.run(_task_run_counts(state.state_details.flow_run_id))
    # contoso's listing stalled in list-folders (the others were listed); its own task listed it again
    assert runs["sync-contoso"] == runs["sync-northwind"] == runs["sync-fabrikam"] == 1, runs


def _stop_sessions_after_login(target: SftpTarget) -> tuple[sftp.Sftp, list[int], Any]:
    """A connection to sshd that has listed once (its SFTP channel open), whose session processes are then
    SIGSTOPped: the server stops answering."""
    context = sftp.connect(load_settings().sftp)
    connection = context.__enter__()
    connection.list_files("contoso")
    sessions = sshd_sessions(target.server)
    assert sessions, "sshd has no session process for the connection"
    signal_all(sessions, signal.SIGSTOP)
    return connection, sessions, context


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_sshd_stopped_mid_sync_times_out(openssh_target: SftpTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    """sshd's session SIGSTOPped after login: no reply at all (not even SSH keepalives), the sync gives up."""
    monkeypatch.setenv("SFTP_IMPORT_SFTP_TIMEOUT_SECONDS", "1")
    put(openssh_target.client_dir("contoso"), "contacts.csv")
    settings = load_settings()
    connection, sessions, context = _stop_sessions_after_login(openssh_target)
    try:
        with pytest.raises(sftp.SftpTimeout, match="while listing"):
            sync.sync_client(connection, settings, CONTRACTS["contoso"], datetime.now(UTC))
    finally:
        signal_all(sessions, signal.SIGKILL)
        context.__exit__(None, None, None)
    assert files("contoso") == {} and staged(settings, "contoso") == set()
    assert run_sync("contoso").count("staged") == 1  # a new session: the next pass completes


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_sshd_stopped_before_login_times_out(openssh_target: SftpTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listening sshd SIGSTOPped: the kernel accepts the connection, no SSH banner ever comes."""
    monkeypatch.setenv("SFTP_IMPORT_SFTP_TIMEOUT_SECONDS", "1")
    put(openssh_target.client_dir("contoso"), "contacts.csv")
    main = int((openssh_target.server.host_key_file.parent / "sshd.pid").read_text())
    os.kill(main, signal.SIGSTOP)
    try:
        with pytest.raises(sftp.SftpTimeout, match="did not complete the connection within 1 s") as raised:
            run_sync("contoso")
    finally:
        os.kill(main, signal.SIGCONT)
    assert fault_of(raised.value) is Fault.TRANSIENT
    assert run_sync("contoso").count("staged") == 1


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_sshd_killed_mid_listing(openssh_target: SftpTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing request reaches the stopped session (its socket holds it unread), then the session is killed."""
    monkeypatch.setenv("SFTP_IMPORT_SFTP_TIMEOUT_SECONDS", "20")
    folder = openssh_target.client_dir("contoso")
    for i in range(200):
        put(folder, f"contacts-{i:03d}.csv", b"Email\nu%d@example.com\n" % i)
    settings = load_settings()
    connection, sessions, context = _stop_sessions_after_login(openssh_target)
    errors: list[BaseException] = []

    def listing() -> None:
        try:
            sync.sync_client(connection, settings, CONTRACTS["contoso"], datetime.now(UTC))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=listing)
    try:
        worker.start()
        while unread_bytes(openssh_target.server.port) == 0:  # the request is in the server's socket
            assert worker.is_alive(), errors
            time.sleep(0.01)
        signal_all(sessions, signal.SIGKILL)
        worker.join()
    finally:
        signal_all(sessions, signal.SIGKILL)
        context.__exit__(None, None, None)
    assert len(errors) == 1 and not isinstance(errors[0], sftp.SftpTimeout), errors  # the drop, not the bound
    assert fault_of(errors[0]) is Fault.TRANSIENT
    assert files("contoso") == {} and staged(settings, "contoso") == set() and incoming(settings, "contoso") == []
    assert run_sync("contoso").count("staged") == 200


# --- a refused login ---------------------------------------------------------------------------------


@pytest.mark.openssh
def test_a_refused_key_is_a_configuration_fault_naming_host_and_user(
    openssh_target: SftpTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, other_key = prepare_keys(tmp_path / "other")
    monkeypatch.setenv("SFTP_IMPORT_SFTP_KEY_FILE", str(other_key))
    settings = load_settings()
    with pytest.raises(sftp.LoginRefused) as raised:
        run_sync("contoso")
    message = str(raised.value)
    assert f"{settings.sftp.host}:{settings.sftp.port}" in message and repr(settings.sftp.username) in message
    assert fault_of(raised.value) is Fault.CONFIGURATION


@pytest.mark.slow
def test_a_refused_password_fails_the_pass_once_without_retries(
    prefect_harness: None, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One message naming host and user (never the password), one login, no client task, no retry."""
    from prefect.states import State

    from flows.hourly_sync import hourly_sync

    root = tmp_path / "root"
    for contract in CONTRACTS.values():
        (root / contract.directory).mkdir(parents=True)
        put(root / contract.directory, "contacts.csv")
    with running_server(root, tmp_path / "state", password="right-pw") as server:
        point_env_at(monkeypatch, server, "/")
        monkeypatch.delenv("SFTP_IMPORT_SFTP_KEY_FILE")
        monkeypatch.setenv("SFTP_IMPORT_SFTP_PASSWORD", "wrong-pw-x7")
        state = cast("State[Any]", hourly_sync(return_state=True))
    assert state.is_failed()
    message = state.message or ""
    assert "refused the login of user 'sftp-import'" in message and f"127.0.0.1:{server.port}" in message
    assert "wrong-pw-x7" not in message
    assert server.logins == ["sftp-import"]  # the check's: no retry, and no client tried to log in
    runs = asyncio.run(_task_run_counts(state.state_details.flow_run_id, last="check-sftp"))
    assert runs == {"check-sftp": 1}, runs
    assert all(files(client) == {} for client in CONTRACTS)


# --- files that change under the sync -----------------------------------------------------------------


def test_a_file_deleted_between_listing_and_copy_is_passed_over(
    asyncssh_target: SftpTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = asyncssh_target.client_dir("contoso")
    for name in ("a.csv", "b.csv", "c.csv"):
        put(folder, name, CSV + name.encode() + b"@example.com,X\n")
    settings = load_settings()
    with sftp.connect(settings.sftp) as connection:
        listed = connection.list_files

        def list_then_delete(directory: str) -> list[sftp.RemoteFile]:
            found = listed(directory)
            (folder / "b.csv").unlink()  # the client deletes it right after the listing
            return found

        monkeypatch.setattr(connection, "list_files", list_then_delete)
        result = sync.sync_client(connection, settings, CONTRACTS["contoso"], datetime.now(UTC))
    assert {f.name: (f.outcome, f.reason) for f in result.files} == {
        "a.csv": ("staged", None),
        "b.csv": ("skipped", "deleted from the folder before it was copied"),
        "c.csv": ("staged", None),
    }
    assert set(files("contoso")) == {"a.csv", "c.csv"} and staged(settings, "contoso") == {"a.csv", "c.csv"}
    assert incoming(settings, "contoso") == []


def test_a_file_rewritten_while_copied_is_never_staged_half_old_half_new(
    faulty_target: SftpTarget, faults: Faults
) -> None:
    """Rewritten (same size, new bytes, new mtime) after its first MiB was read: the copy is dropped and
    the file waits; once settled, the next pass stages the new bytes whole."""
    folder = faulty_target.client_dir("contoso")
    old, new = b"o" * (2 * sftp.CHUNK), b"n" * (2 * sftp.CHUNK)
    put(folder, "contacts.csv", old)
    faults.change_in, faults.change_from = "contacts.csv", sftp.CHUNK
    faults.on_first_read = lambda: put(folder, "contacts.csv", new, age=0)
    first = run_sync("contoso")
    assert [(f.name, f.outcome, f.reason) for f in first.files] == [
        ("contacts.csv", "waiting", "changed while being copied")
    ]
    settings = load_settings()
    assert faults.on_first_read is None  # the rewrite happened mid-copy
    assert staged(settings, "contoso") == set() and incoming(settings, "contoso") == []
    assert files("contoso")["contacts.csv"]["status"] == "waiting"
    assert run_sync("contoso", now=datetime.now(UTC) + timedelta(seconds=5)).count("staged") == 1
    assert (Path(settings.staging_url) / "contoso" / "contacts.csv").read_bytes() == new


# --- a full disk while staging ---------------------------------------------------------------------------


def _file_size_limit(limit: int) -> None:
    """In the child: writes past `limit` bytes fail with EFBIG (SIGXFSZ ignored, so not fatal)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_disk_full_while_staging_leaves_nothing_and_the_next_pass_completes(asyncssh_target: SftpTarget) -> None:
    """The sync in a process that may write files of at most 1 MiB; a 3 MiB upload fails to stage."""
    large = put(asyncssh_target.client_dir("contoso"), "large.csv", os.urandom(3 * sftp.CHUNK))
    child = subprocess.run(
        [sys.executable, "-c", "from tests.test_sync import run_sync; run_sync('contoso')"],
        cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=lambda: _file_size_limit(sftp.CHUNK),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode != 0 and "File too large" in child.stderr, child.stderr[-2000:]
    settings = load_settings()
    assert staged(settings, "contoso") == set() and incoming(settings, "contoso") == []  # no partial file
    assert files("contoso") == {}  # no ledger row
    assert run_sync("contoso").count("staged") == 1  # space again: the next pass completes
    assert (Path(settings.staging_url) / "contoso" / "large.csv").read_bytes() == large.read_bytes()
