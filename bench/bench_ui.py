"""Benchmark: the ops overview of 1,000 clients, from a real store to the Prefect UI in Debian's Chromium.

A store is filled with a day of 1,000 clients (two imported files each; a few rejected files, failed
runs, rows rejected and silent clients); the overview is read and built (two queries), published to
a resident Prefect server of a temporary home (two API calls), and its page is loaded in Chromium:
the time from asking for the artifact's page until its last row is on screen, median of 3 loads.
The same table uncapped (every client a row) is published under another key and timed too: why
`uploads-overview` stops at MAX_TABLE_ROWS.
Run: `.venv/bin/python -m bench.bench_ui [--clients 1000]` (`make bench` runs it; not part of `make test`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from demo.browser import chromium_page, open_artifact
from deployments import server
from schemas.contract import Contract, load_contracts
from tasks import overview, store
from tasks.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
ZONES = ("Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "UTC")
LOADS = 3


def make_contracts(count: int) -> dict[str, Contract]:
    """client-0000 … with northwind's fields, spread over four timezones; every tenth expects a daily upload."""
    template = load_contracts(REPO / "examples" / "clients")["northwind"].model_dump()
    contracts = {}
    for i in range(count):
        extra = {"expected_every": "1d" if i % 10 == 0 else None, "timezone": ZONES[i % len(ZONES)]}
        contract = Contract.model_validate(template | extra | {"id": f"client-{i:04d}", "name": f"Client {i}"})
        contracts[contract.id] = contract
    return contracts


def fill(con: Any, contracts: dict[str, Contract], now: datetime) -> None:
    """Today's files and runs: two 5,000-row files imported per client; every 200th client also a file
    rejected, every 150th 9 % of its rows rejected, every 333rd a failed run, every 250th (from 10) silent."""
    today = now - timedelta(minutes=30)
    for i, client in enumerate(contracts):
        received = now - timedelta(days=3) if i % 250 == 10 else today
        files = [{"name": f"contacts-{n}.csv", "status": "staged", "size": 1, "mtime": received} for n in (1, 2)]
        if i % 200 == 3:
            files.append({"name": "notes.pdf", "status": "rejected", "size": 1, "mtime": today,
                          "reason": "the extension .pdf is not accepted"})  # fmt: skip
        store.record_arrivals(con, client, received, files)
        rejected = 450 if i % 150 == 5 else 3
        stats = {"rows_read": 5000, "rows_imported": 5000 - rejected, "rows_rejected": rejected}
        for n in (1, 2):
            result = store.FileResult(
                client,
                f"contacts-{n}.csv",
                store.FileStatus.IMPORTED,
                f"{client}-run",
                today,
                format="csv",
                encoding="utf-8",
                delimiter=",",
                stats=stats,
                read_seconds=0.2,
                upsert_seconds=0.1,
            )
            store.record_file_result(con, result)
        state = "failed" if i % 333 == 11 else "completed"
        store.record_run(con, store.Run(f"{client}-run", client, "daily", None, today), finished_at=today, state=state)


def timed(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<46} {seconds:8.3f} s  {note}")


def page_seconds(ui: str, key: str, last: str) -> list[float]:
    """Load the key's newest version LOADS times; seconds until the text `last` is on the page, each time."""
    with chromium_page() as page:
        return [open_artifact(page, ui, key, shown=last) for _ in range(LOADS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # artifacts made outside a flow run, on purpose
    work = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    home = work / "home"
    os.environ["SFTP_IMPORT_HOME"] = str(home)
    settings = load_settings()
    contracts = make_contracts(args.clients)
    now = datetime.now(UTC)
    try:
        started = time.perf_counter()
        with store.open_store(settings.db_path) as con, store.transaction(con):
            fill(con, contracts, now)
        print(f"ops overview of {args.clients} clients (store filled in {time.perf_counter() - started:.1f} s)")
        running, _ = server.start(home, port=server.free_port())
        os.environ.update(server.client_env(home, running.url))
        started = time.perf_counter()
        rows, markdown = overview.build_overview(settings, contracts, now, running.ui, [])
        timed("read + build (2 queries)", time.perf_counter() - started, f"{len(rows)} table rows")
        with store.open_store(settings.db_path, read_only=True) as con:
            lines = overview.read_overview(con, contracts, now)
        needing = sum(1 for line in lines if line.reasons)
        from prefect.artifacts import create_table_artifact

        started = time.perf_counter()
        overview.publish_overview(rows, markdown)
        timed("publish (2 API calls)", time.perf_counter() - started, f"{needing} clients need attention")
        uncapped = overview.overview_rows(lines, running.ui, limit=len(lines))
        create_table_artifact(table=uncapped, key="bench-overview-uncapped", description="every client a row")
        pages = {
            f"page {overview.OVERVIEW_KEY} ({len(rows)} rows)": (overview.OVERVIEW_KEY, str(rows[-1]["client"])),
            f"page overview uncapped ({len(uncapped)} rows)": ("bench-overview-uncapped", str(uncapped[-1]["client"])),
            f"page {overview.TODAY_KEY} (markdown)": (overview.TODAY_KEY, "Needs attention"),
        }
        for label, (key, last) in pages.items():
            loads = page_seconds(running.ui, key, last)
            timed(label, statistics.median(loads), "median; loads: " + ", ".join(f"{s:.2f}" for s in loads))
    finally:
        server.stop(home)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
