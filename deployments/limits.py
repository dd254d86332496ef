"""The global concurrency limit that serialises every DuckDB writer (one writer process per file)."""

from __future__ import annotations

STORE_LIMIT = "duckdb-store"


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
