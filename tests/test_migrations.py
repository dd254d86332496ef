"""The store's migrations: a store written by an earlier version opens and is upgraded, its data intact."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb

from tasks import store
from tasks.store.schema import BASELINE, MIGRATIONS, spelled_for

OLD_STORE = Path(__file__).parent / "data" / "store-ad7ce00.sql"
# sha256 of the DDL of the version at ad7ce00 (`SCHEMA` in its tasks/store.py): migration 1 is that
# layout and must never change, or stores written by that version would not be upgraded right
AD7CE00_LAYOUT = "49d9d8c1d8da54786df6a0252cdf1bfad6d51a0c6bb9b48e3bdea8cb6b99cf57"
TABLES = ("files", "waiting", "ignored", "row_errors", "runs", "deletions", '"contacts_northwind"')


def _rows(con: Any, columns: dict[str, list[str]]) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, reading only the given columns of each."""
    return {t: con.execute(f"SELECT {', '.join(c)} FROM {t} ORDER BY ALL").fetchall() for t, c in columns.items()}


def _old_store(path: Path) -> tuple[dict[str, list[str]], dict[str, list[tuple[object, ...]]]]:
    """A store file with the layout and rows of the version at ad7ce00; its columns and rows per table."""
    con = duckdb.connect(str(path))
    con.execute(BASELINE)
    con.execute(OLD_STORE.read_text())
    columns = {t: [d[0] for d in con.execute(f"SELECT * FROM {t} LIMIT 0").description] for t in TABLES}
    rows = _rows(con, columns)
    con.close()
    return columns, rows


def test_an_old_store_is_migrated_by_its_first_reader_with_its_data_intact(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    columns, before = _old_store(path)
    with store.open_store(path, read_only=True) as con:  # `status` on an old store: a writer migrates it first
        assert store.schema_version(con) == store.LATEST
        assert _rows(con, columns) == before  # every value of every old column kept
        codes = con.execute("SELECT name, code FROM files ORDER BY name").fetchall()
        deletions = con.execute("SELECT deleted_at IS NOT NULL, path, planned_at FROM deletions").fetchall()
    assert codes == [("monday.csv", None), ("notes.pdf", None)]  # the new columns, empty on old rows
    assert deletions == [(True, None, None)]  # an old deletion is confirmed: it is in the log
    with store.open_store(path) as con:  # migrated once: a second open applies nothing
        versions = con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions == [(n,) for n in range(1, store.LATEST + 1)]


def test_a_new_store_gets_every_migration(tmp_path: Path) -> None:
    with store.open_store(tmp_path / "store.duckdb") as con:
        assert store.schema_version(con) == store.LATEST
        columns = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'files'"
            ).fetchall()
        }
    assert "code" in columns


def test_migration_1_is_the_layout_stores_were_written_with() -> None:
    assert hashlib.sha256(BASELINE.encode()).hexdigest() == AD7CE00_LAYOUT
    assert MIGRATIONS[0] == BASELINE


NAMES = [
    "cafe\u0301.csv",
    "caf\u00e9.csv",
    "A\u030angstro\u0308m.csv",
    "\u212bngstr\u00f6m.csv",
    "plain.csv",
    "ﬁle.csv",
]


def test_migration_7_fills_the_name_key_of_old_rows_as_the_sync_computes_it(tmp_path: Path) -> None:
    """A store at migration 6 (ledger rows without `name_key`): after the upgrade, the listed name in any
    Unicode form finds its old row."""
    path = tmp_path / "store.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ)")
    for number, ddl in enumerate(MIGRATIONS[:6], start=1):
        con.execute(ddl)
        con.execute("INSERT INTO schema_version VALUES (?, now())", [number])
    con.execute(
        "INSERT INTO files (client, name, status, received_at) SELECT 'contoso', unnest(?::VARCHAR[]), 'imported', "
        "now()",
        [NAMES[::2]],  # decomposed forms, and one name NFC leaves alone
    )
    con.close()
    with store.open_store(path, read_only=True) as con:
        ledger = store.sync_ledgers(con, {"contoso": NAMES})["contoso"]
    assert sorted(ledger.known) == sorted({store.name_key(name) for name in NAMES[::2]})
    assert {known.name for known in ledger.known.values()} == set(NAMES[::2])


def test_the_migrations_nfc_is_pythons_on_both_backends(backend: store.Store) -> None:
    with backend.read() as con:
        sql = spelled_for(con, "SELECT name, nfc_normalize(name) FROM (SELECT unnest(?::VARCHAR[]) AS name) AS t")
        keys = dict(con.execute(sql, [NAMES]).fetchall())
    assert keys == {name: store.name_key(name) for name in NAMES}
