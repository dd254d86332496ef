"""Benchmark: ten 5,000-row files of one client imported into a store holding 1,000,000 contacts
over 200 clients. Prints seconds per stage, and the upsert against a plain INSERT of the same rows.

Run: `.venv/bin/python -m bench.bench_import` (about a minute; works in a temp folder)."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

CLIENTS, PER_CLIENT, FILES, ROWS = 200, 5_000, 10, 5_000
FIELDS = [
    {"name": "Email", "xml": "email", "type": "email", "required": True},
    {"name": "First Name", "xml": "first_name"},
    {"name": "Last Name", "xml": "last_name"},
    {"name": "Account ID", "xml": "account_id"},
    {"name": "Purchase Date", "xml": "purchase_date", "type": "date"},
    {"name": "Amount", "xml": "amount", "type": "decimal"},
    {"name": "Points", "xml": "points", "type": "integer"},
    {"name": "Opted In", "xml": "opted_in", "type": "boolean"},
    {"name": "Last Visit", "xml": "last_visit", "type": "datetime"},
    {"name": "Segment", "xml": "segment", "type": "enum", "values": ["SMB", "Mid-Market", "Enterprise"]},
    {"name": "City", "xml": "city"},
    {"name": "Country", "xml": "country"},
]


def main() -> None:
    os.environ["SFTP_IMPORT_HOME"] = tempfile.mkdtemp(prefix="bench-import-")
    import pandas as pd

    from schemas.samples import write_rows
    from tasks import importer, store
    from tasks.settings import load_settings
    from tests.importing import make_contract, stage_bytes

    settings = load_settings()
    contracts = [make_contract(f"client{c:03}", FIELDS) for c in range(CLIENTS)]
    target = contracts[7]

    def record(i: int, salt: int) -> dict[str, object]:
        return {
            "email": f"person{i}@example.com",
            "first_name": f"First{i % 977}",
            "last_name": f"Last{(i + salt) % 1013}",
            "account_id": f"{i:08}",
            "purchase_date": (datetime(2020, 1, 1) + timedelta(days=(i + salt) % 2000)).date(),
            "amount": Decimal(f"{(i * 7 + salt) % 100000}.{i % 100:02}"),
            "points": (i + salt) % 5000,
            "opted_in": (i + salt) % 2 == 0,
            "last_visit": datetime(2026, 1, 1) + timedelta(minutes=(i * 13 + salt) % 500_000),
            "segment": ("SMB", "Mid-Market", "Enterprise")[i % 3],
            "city": None if (i + salt) % 5 == 0 else f"City{i % 300}",
            "country": "NL",
        }

    started = time.perf_counter()
    seed = pd.DataFrame([record(i, 0) for i in range(PER_CLIENT)]).assign(_line=range(2, PER_CLIENT + 2))
    with store.open_store(settings.db_path) as con:
        for contract in contracts:
            with store.transaction(con):
                store.upsert_contacts(con, contract, seed, "seed.csv", datetime.now(UTC))
        total = sum(con.execute(f"SELECT count(*) FROM {store.contacts_table(c.id)}").fetchone()[0] for c in contracts)
    print(f"seeded {total:,} contacts over {CLIENTS} clients in {time.perf_counter() - started:.1f} s")

    received = datetime(2026, 3, 2, tzinfo=UTC)
    for f in range(FILES):  # half the rows update stored contacts, half are new; some merge within a file
        rows = [record(i, f + 1) for i in range(f * ROWS // 2, f * ROWS // 2 + ROWS)]
        stage_bytes(
            settings, target.id, f"day-{f:02}.csv", write_rows(target, rows, "csv"), received + timedelta(minutes=f)
        )

    started = time.perf_counter()
    with store.open_store(settings.db_path) as con:
        names = store.staged_files(con, target.id, None)
    outcomes = importer.import_client(
        settings, target, names, run_id="bench", kind="daily", cutoff=None, started_at=datetime.now(UTC)
    ).outcomes
    wall = time.perf_counter() - started
    read = sum(o.read_seconds for o in outcomes)
    upsert = sum(o.upsert_seconds for o in outcomes)
    print(
        f"import of {FILES} files x {ROWS:,} rows: {wall:.2f} s wall "
        f"(read+validate+merge {read:.2f} s, upsert+ledger {upsert:.2f} s, rest = connections/commits)"
    )
    new, updated = (sum(o.stats[key] for o in outcomes) for key in ("new_contacts", "updated_contacts"))
    print(f"  per file: {wall / FILES:.3f} s; upsert {upsert / FILES * 1000:.0f} ms; new {new:,}, updated {updated:,}")

    # the floor: a plain INSERT of the same 5,000 typed rows into a fresh table of the same client layout
    merged = pd.DataFrame([record(i, 99) for i in range(ROWS)]).assign(_line=range(2, ROWS + 2))
    floor = make_contract("floor", FIELDS)
    with store.open_store(settings.db_path) as con:
        store.ensure_contacts_table(con, floor)
        started = time.perf_counter()
        with store.transaction(con):
            store.upsert_contacts(con, floor, merged, "floor.csv", datetime.now(UTC))
        insert_only = time.perf_counter() - started
        started = time.perf_counter()
        with store.transaction(con):
            store.upsert_contacts(con, target, merged, "again.csv", datetime.now(UTC))
        upsert_one = time.perf_counter() - started
    print(
        f"one file of {ROWS:,} rows: all new (insert path) {insert_only * 1000:.0f} ms; "
        f"all existing, all changed (delete+insert) {upsert_one * 1000:.0f} ms"
    )
    print(f"store size {Path(settings.db_path).stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
