"""The store's writer lock: kernel file locks in a queue; a dead holder frees it at once; fair; shared by threads."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest

from tasks import store
from tasks.settings import load_settings
from tasks.writer_lock import WriterLock, _Ticket, writer_lock
from tests.writers import hold_store

# N writes, each recording when it held the store (enter, exit) in the store itself
WRITE = """
import os, sys, time
from pathlib import Path
from tasks import store
for _ in range(int(sys.argv[2])):
    with store.open_store(Path(sys.argv[1])) as con:
        con.execute("CREATE TABLE IF NOT EXISTS held (pid INTEGER, entered DOUBLE, left_at DOUBLE)")
        entered = time.time()
        time.sleep(0.01)
        con.execute("INSERT INTO held VALUES (?, ?, ?)", [os.getpid(), entered, time.time()])
"""


def test_a_writer_killed_while_holding_the_store_frees_it_at_once(home: Path) -> None:
    db = load_settings().db_path
    holder = hold_store(600)
    lock = writer_lock(db)
    assert lock.holder() is not None and lock.holder().pid == holder.pid  # type: ignore[union-attr]
    got: list[float] = []

    def next_writer() -> None:
        with store.open_store(db) as con:
            got.append(time.monotonic())
            con.execute("CREATE TABLE after_kill AS SELECT 1 AS one")

    waiter = threading.Thread(target=next_writer)
    waiter.start()
    time.sleep(0.3)
    assert not got  # it waits while the holder lives
    os.killpg(holder.pid, signal.SIGKILL)
    killed = time.monotonic()
    holder.wait()
    waiter.join(timeout=30)
    assert got, "the next writer never got the store"
    print(f"\nnext writer got the store {got[0] - killed:.3f} s after the holder was killed")
    assert got[0] - killed < 1.0
    with store.open_store(db, read_only=True) as con:
        assert con.execute("SELECT one FROM after_kill").fetchall() == [(1,)]
    assert lock.holder() is None and not [p for p in lock.queue.iterdir() if p.name.isdigit()]


def test_writes_of_two_processes_are_serialised_and_none_fails(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    writers = [subprocess.Popen([sys.executable, "-c", WRITE, str(db), "25"]) for _ in range(2)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with store.open_store(db, read_only=True) as con:
        held = con.execute("SELECT pid, entered, left_at FROM held ORDER BY entered").fetchall()
    assert len(held) == 50 and {pid for pid, _, _ in held} == {w.pid for w in writers}
    for (_, _, left), (_, entered, _) in pairwise(held):
        assert left <= entered  # never two writers at once


def test_waiters_are_served_in_arrival_order(tmp_path: Path) -> None:
    """Fair between processes: each WriterLock here is a separate ticket holder, as a process is."""
    queue = tmp_path / "store.duckdb.lock.d"
    first, order = WriterLock(queue), []

    def wait_turn(name: str) -> None:
        with WriterLock(queue)():
            order.append(name)

    with first():
        threads = []
        for name in ("second", "third", "fourth"):
            tickets = len([p for p in queue.iterdir() if p.name.isdigit()])
            threads.append(threading.Thread(target=wait_turn, args=(name,)))
            threads[-1].start()
            while len([p for p in queue.iterdir() if p.name.isdigit()]) == tickets:  # queued before the next
                time.sleep(0.005)
    for thread in threads:
        thread.join(timeout=30)
    assert order == ["second", "third", "fourth"]


def test_a_waiter_says_who_holds_the_store(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = load_settings().db_path
    holder = hold_store(1.6)
    with caplog.at_level(logging.INFO, logger="sftp_import.lock"), store.open_store(db):
        pass
    holder.wait(timeout=30)
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"waiting for the store: held by pid {holder.pid} (python -c" in m and " since " in m for m in messages)


def test_threads_of_a_process_share_one_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = WriterLock(tmp_path / "queue", handoff_seconds=60)
    tickets: list[int] = []
    original = _Ticket.__init__

    def counted(self: _Ticket, queue: Path, who: str) -> None:
        tickets.append(1)
        original(self, queue, who)

    monkeypatch.setattr(_Ticket, "__init__", counted)
    inside, overlap = [0], []

    def use() -> None:
        for _ in range(5):
            with lock(), lock():  # nested in the same thread: no second ticket, no deadlock
                inside[0] += 1
                overlap.append(inside[0])
                time.sleep(0.01)
                inside[0] -= 1

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(overlap) == 1 and len(overlap) == 20  # one holder at a time
    assert 1 <= len(tickets) < 20  # handed on while others waited, not taken per use
    assert lock.holder() is None  # given back when nobody waits


def test_the_store_of_a_run_writes_under_the_lock_and_reads_without(home: Path) -> None:
    from tasks.settings import load_settings

    settings = load_settings()
    assert settings.store is settings.store  # built once per Settings, handed in with them
    lock = writer_lock(settings.db_path)
    with settings.store.write() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS one")
        assert lock.holder() is not None and lock.holder().pid == os.getpid()  # type: ignore[union-attr]
    assert lock.holder() is None
    with settings.store.read() as con:
        assert con.execute("SELECT one FROM t").fetchall() == [(1,)]
        assert lock.holder() is None
