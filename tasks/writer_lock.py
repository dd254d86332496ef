"""The DuckDB store's writer lock: a first-come, first-served queue of kernel file locks beside the store.

DuckDB admits one read-write process per file, so every writer of a store is on its machine and a
local lock is enough. Each waiting or holding process has a ticket file in `<store>.lock.d/`,
numbered in arrival order and `flock`ed by its owner for as long as it waits or holds: the kernel
frees that lock the moment the owner dies, so a crashed writer can never hold the store (the next
one sees the dead ticket, removes it and goes on at its next poll). The lowest live ticket holds the
store; the others wait in order, which keeps it fair between processes.

The threads of one process share one ticket: the first takes it and, while other threads of the
process wait, it is handed on with the turn, and given back when nobody waits or after
`handoff_seconds`, so other processes get their turn.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO

log = logging.getLogger("sftp_import.lock")

HANDOFF_SECONDS = 2.0  # how long a process keeps the lock while its own threads queue for it
POLL_SECONDS = (0.005, 0.05)  # a waiter looks again after this long, doubling from the first to the second
REPORT_EVERY_SECONDS = 10.0  # a waiter says who holds the store this often


def _who() -> str:
    """What this process is, for a waiter's message: the Prefect flow run's name, else its command line."""
    if "prefect.context" in sys.modules:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        if context is not None and context.flow_run is not None:
            return context.flow_run.name
    if not sys.argv or sys.argv[0] in ("", "-c"):
        return "python -c"
    return " ".join(arg[:40] for arg in [Path(sys.argv[0]).name, *sys.argv[1:4]])


@dataclass(frozen=True)
class Holder:
    """Who holds (or waits for) the store, as its ticket file says."""

    pid: int
    who: str
    since: str  # ISO time it took the store (or asked for it)

    def describe(self) -> str:
        clock = self.since[11:19] if len(self.since) >= 19 else self.since
        return f"held by pid {self.pid} ({self.who}) since {clock}"


class _Ticket:
    """This process's place in the queue: a numbered file it keeps flock'ed while it waits or holds."""

    def __init__(self, queue: Path, who: str) -> None:
        self.queue = queue
        queue.mkdir(parents=True, exist_ok=True)
        with open(queue / ".queue", "a+") as guard:  # numbers are handed out one at a time
            fcntl.flock(guard, fcntl.LOCK_EX)
            numbers = [int(p.name) for p in queue.iterdir() if p.name.isdigit()]
            self.number = max(numbers, default=0) + 1
            self.path = queue / f"{self.number:012d}"
            temporary = queue / f".{self.number}.{os.getpid()}.{threading.get_ident()}"
            self.file: IO[str] = open(temporary, "w")  # noqa: SIM115 - kept open (and locked) until release
            fcntl.flock(self.file, fcntl.LOCK_EX)
            self.mark(who, "waiting")
            temporary.rename(self.path)  # visible only once locked: a live ticket is never taken for dead

    def mark(self, who: str, state: str) -> None:
        """What a waiter reads of this ticket: whose it is, since when, waiting or holding."""
        info = {"pid": os.getpid(), "who": who, "since": datetime.now(UTC).isoformat(), "state": state}
        self.file.seek(0)
        self.file.truncate()
        self.file.write(json.dumps(info))
        self.file.flush()

    def ahead(self) -> list[Path]:
        """The tickets before this one, lowest first."""
        return sorted(p for p in self.queue.iterdir() if p.name.isdigit() and int(p.name) < self.number)

    def release(self) -> None:
        """Leave the queue: the file goes first, then the lock with it."""
        self.path.unlink(missing_ok=True)
        self.file.close()


def _alive(ticket: Path) -> Holder | None:
    """The holder of a ticket, or None when its owner is gone (the dead ticket is removed)."""
    try:
        with open(ticket) as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # locked: its owner lives
                try:
                    info = json.loads(probe.read() or "{}")
                except ValueError:
                    info = {}
                return Holder(int(info.get("pid", 0)), str(info.get("who", "?")), str(info.get("since", "?")))
            ticket.unlink(missing_ok=True)  # its owner died (or just left): the kernel freed its lock
            return None
    except FileNotFoundError:
        return None


class WriterLock:
    """The store's writer lock, as a callable context manager (`with lock(): …`): see the module."""

    def __init__(self, queue: Path, handoff_seconds: float = HANDOFF_SECONDS) -> None:
        self.queue = queue
        self._handoff_seconds = handoff_seconds
        self._turn = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0
        self._held: _Ticket | None = None
        self._since = 0.0
        self._owner: int | None = None  # the thread inside now: it may take the lock again (nested writes)
        self._at_release: list[Callable[[], None]] = []

    def _acquire(self) -> _Ticket:
        ticket = _Ticket(self.queue, _who())
        waited, delay, reported = time.monotonic(), POLL_SECONDS[0], 0.0
        try:
            while True:
                holders = [holder for path in ticket.ahead() if (holder := _alive(path)) is not None]
                if not holders:
                    ticket.mark(_who(), "holding")
                    return ticket
                if time.monotonic() - reported >= REPORT_EVERY_SECONDS and time.monotonic() - waited >= 1.0:
                    log.info("waiting for the store: %s (%d ahead)", holders[0].describe(), len(holders))
                    reported = time.monotonic()
                time.sleep(delay)
                delay = min(delay * 2, POLL_SECONDS[1])
        except BaseException:
            ticket.release()
            raise

    def at_release(self, callback: Callable[[], None]) -> None:
        """Run `callback` (once) when this process next gives the lock back, before others may take it."""
        self._at_release.append(callback)

    def holder(self) -> Holder | None:
        """Who holds the store now (the first live ticket), or None when nobody does."""
        if not self.queue.exists():
            return None
        for path in sorted(p for p in self.queue.iterdir() if p.name.isdigit()):
            holder = _alive(path)
            if holder is not None:
                return holder
        return None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self._owner == threading.get_ident():  # nested in this thread's own hold
            yield
            return
        with self._count:
            self._waiting += 1
        with self._turn:
            with self._count:
                self._waiting -= 1
            try:
                if self._held is None:
                    self._held, self._since = self._acquire(), time.monotonic()
                self._owner = threading.get_ident()
                yield
            finally:
                self._owner = None
                with self._count:
                    keep = self._waiting > 0 and time.monotonic() - self._since < self._handoff_seconds
                if self._held is not None and not keep:
                    held, self._held = self._held, None
                    try:
                        while self._at_release:
                            self._at_release.pop()()
                    finally:
                        held.release()


@cache
def _writer_lock(store_path: Path) -> WriterLock:
    return WriterLock(store_path.with_name(store_path.name + ".lock.d"))


def writer_lock(store_path: Path) -> WriterLock:
    """The one writer lock of this process for the store at `store_path` (its queue beside the file)."""
    return _writer_lock(store_path.resolve())
