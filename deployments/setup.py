"""Prepare a Prefect server for the platform: `python -m deployments.setup [prune]`. Idempotent.

`setup` creates the process work pool (the store needs no Prefect limit: its writers take a file
lock beside the DuckDB file, see tasks/writer_lock.py). `prune` deletes `import-slot` deployments that
prefect.yaml no longer has (a client moved to another time, or left), so no stale schedule runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import yaml

from deployments.generate import POOL, REPO

SLOT_FLOW = "import-slot"


async def ensure_pool(name: str = POOL) -> bool:
    """Create the process work pool if it is missing; True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            await client.read_work_pool(name)
            return False
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            await client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
            return True


async def setup() -> None:
    """The work pool, created only when missing."""
    created = await ensure_pool()
    print(f"work pool {POOL!r} {'created' if created else 'exists'}")


async def prune(prefect_file: Path) -> list[str]:
    """Delete the `import-slot` deployments not in `prefect_file`; returns their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    wanted = {d["name"] for d in yaml.safe_load(prefect_file.read_text(encoding="utf-8"))["deployments"]}
    removed = []
    async with get_client() as client:
        deployments = await client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[SLOT_FLOW])))
        for deployment in deployments:
            if deployment.name not in wanted:
                await client.delete_deployment(deployment.id)
                removed.append(deployment.name)
    print(f"pruned {len(removed)} stale {SLOT_FLOW} deployment(s){': ' + ', '.join(removed) if removed else ''}")
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.setup", description=__doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", choices=["setup", "prune"], default="setup")
    parser.add_argument("--prefect-file", type=Path, default=REPO / "prefect.yaml")
    args = parser.parse_args(argv)
    if args.action == "prune":
        asyncio.run(prune(args.prefect_file))
    else:
        asyncio.run(setup())
    return 0


if __name__ == "__main__":
    sys.exit(main())
