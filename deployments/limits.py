"""The global concurrency limit that serialises every DuckDB writer (one writer process per file).

Every writer takes `store_lock()`; the threads of one process share one hold of the slot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

STORE_LIMIT = "duckdb-store"


HANDOFF_SECONDS = 2.0  # how long a process keeps the store's slot while its own threads queue for it


@contextmanager
def prefect_slot() -> Iterator[None]:
    """The store's global concurrency slot (strict: a missing limit is an error, not a free pass)."""
    from prefect.concurrency.sync import concurrency  # here, so modules that never lock need no prefect

    with concurrency(STORE_LIMIT, occupy=1, strict=True):
        yield


class SharedStoreSlot:
    """The store's global slot, taken once and handed from thread to thread of this process.

    Taking and giving back the slot are server round trips (with events), seconds each when the
    server is busy, and a denied request makes every waiter sleep on Retry-After while the store
    idles: that, not DuckDB, bounded a slot run at a few clients a second. So the threads of a
    process queue here; the first takes the slot and, while others wait, it passes on with the
    turn; it is given back when nobody waits or after HANDOFF_SECONDS (other workers' turn)."""

    def __init__(self, handoff_seconds: float = HANDOFF_SECONDS) -> None:
        self._turn = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0
        self._held: ExitStack | None = None
        self._since = 0.0
        self._handoff_seconds = handoff_seconds

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._count:
            self._waiting += 1
        with self._turn:
            with self._count:
                self._waiting -= 1
            try:
                if self._held is None:
                    held = ExitStack()
                    held.enter_context(prefect_slot())
                    self._held, self._since = held, time.monotonic()
                yield
            finally:
                with self._count:
                    keep = self._waiting > 0 and time.monotonic() - self._since < self._handoff_seconds
                if self._held is not None and not keep:
                    held, self._held = self._held, None
                    held.close()


store_lock = SharedStoreSlot()


async def ensure_store_limit() -> None:
    """Create the store's limit (one slot) on the Prefect server if it is missing; idempotent."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(STORE_LIMIT)
        except ObjectNotFound:
            await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=STORE_LIMIT, limit=1))
