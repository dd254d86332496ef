"""The global concurrency limit that serialises every DuckDB writer (one writer process per file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

STORE_LIMIT = "duckdb-store"


@contextmanager
def store_lock() -> Iterator[None]:
    """The store's global concurrency slot (strict: a missing limit is an error, not a free pass)."""
    from prefect.concurrency.sync import concurrency  # here, so modules that never lock need no prefect

    with concurrency(STORE_LIMIT, occupy=1, strict=True):
        yield


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
