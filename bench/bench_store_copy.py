"""Benchmark: `sftp-import store copy` of a DuckDB store holding 1,000,000 contacts over 200 clients
(and a ledger row per client) into an empty PostgreSQL store of a cluster of its own.

Prints the seconds of the copy with its verification (every table read back, counts and checksums
compared) and the rows per table. Run: `.venv/bin/python -m bench.bench_store_copy [--clients 200]`."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta

PER_CLIENT = 5_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    os.environ["SFTP_IMPORT_HOME"] = tempfile.mkdtemp(prefix="bench-copy-")
    import pandas as pd

    from bench.bench_import import FIELDS
    from deployments.postgres import create_database, postgres_cluster
    from tasks import store
    from tasks.settings import load_settings
    from tasks.store.copy import copy_store
    from tests.importing import make_contract, record_arrival

    settings = load_settings()
    now = datetime.now(UTC)
    seed = pd.DataFrame(
        {
            "email": [f"person{i}@example.com" for i in range(PER_CLIENT)],
            "first_name": [f"First{i % 977}" for i in range(PER_CLIENT)],
            "purchase_date": [(datetime(2020, 1, 1) + timedelta(days=i % 2000)).date() for i in range(PER_CLIENT)],
            "amount": [f"{i % 100000}.{i % 100:02}" for i in range(PER_CLIENT)],  # as a file's rows reach the store
            "points": [i % 5000 for i in range(PER_CLIENT)],
            "_line": range(2, PER_CLIENT + 2),
        }
    ).reindex(columns=[*(f["xml"] for f in FIELDS), "_line"])
    started = time.perf_counter()
    with settings.store.write() as con:
        for c in range(args.clients):
            with store.transaction(con):
                store.upsert_contacts(con, make_contract(f"client{c:03}", FIELDS), seed, "seed.csv", now)
                record_arrival(
                    con, client=f"client{c:03}", name="seed.csv", status="imported", size=1, mtime=now, received_at=now
                )
    print(
        f"seeded {args.clients * PER_CLIENT:,} contacts over {args.clients} clients in "
        f"{time.perf_counter() - started:.0f} s"
    )
    with postgres_cluster() as cluster:
        url = create_database(cluster, "moved")
        target = store.store_at(url)
        tables, seconds = copy_store(settings.store, target)
        contacts = sum(t.rows for t in tables if t.table.startswith("contacts_"))
        print(
            f"store copy: {seconds:.1f} s for {contacts:,} contacts in {args.clients} tables and "
            f"{sum(t.rows for t in tables) - contacts:,} other rows, counts and checksums verified "
            f"({contacts / seconds:,.0f} contacts/s)"
        )
        store.close_store(url)


if __name__ == "__main__":
    main()
