"""Moving up: copy a store (the embedded DuckDB file) into an empty PostgreSQL store, table by table,
and verify each table's row count and checksum read back from the target.

Every table is copied, so nothing of the platform's memory is lost: the ledger (the name rule
holds for every name ever seen, purged ones included), waiting and ignored files, row errors, runs,
the deletion log, the result outbox, the samples written, and each client's contacts table (with
the columns of fields its contract dropped). The copy is one transaction on the target: a failed
copy leaves it empty, so it can simply be run again."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tasks.store.connection import Store
from tasks.store.contacts import contact_columns, contacts_table, table_columns
from tasks.store.sql import Dialect, dialect_of, quote_name, transaction

TABLES = ("files", "waiting", "ignored", "row_errors", "runs", "deletions", "results", "samples")
BATCH_ROWS = 50_000
_MODULUS = 2**128


class CopyRefused(Exception):
    """The target is not an empty PostgreSQL store, or a table read back differs from its source."""


@dataclass(frozen=True)
class TableCopy:
    """One table copied: its rows, and the checksum of its rows (source and target agree on both)."""

    table: str
    rows: int
    checksum: str


def _canonical(value: Any) -> str:
    """A value as both backends give it back: instants in UTC, decimals with their scale."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)


def _row_hash(row: tuple[Any, ...]) -> int:
    text = "\x1f".join(_canonical(v) for v in row).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=16).digest(), "big")


class _Summed:
    """An order-free checksum of rows (the sum of their hashes): the backends may list rows in any order."""

    def __init__(self) -> None:
        self.rows = 0
        self.total = 0

    def add(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        self.rows += len(rows)
        self.total = (self.total + sum(_row_hash(row) for row in rows)) % _MODULUS
        return rows

    @property
    def checksum(self) -> str:
        return f"{self.total:032x}"


def contacts_clients(con: Any) -> list[str]:
    """The clients that have a contacts table in the store."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_name LIKE 'contacts\\_%' ESCAPE '\\' ORDER BY table_name"
    ).fetchall()
    return [name.removeprefix("contacts_") for (name,) in rows]


def _refuse_unless_empty(con: Any) -> None:
    if dialect_of(con) is not Dialect.POSTGRES:
        raise CopyRefused("the target must be a PostgreSQL store (postgresql://…)")
    filled = [t for t in TABLES if con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]]
    filled += [contacts_table(c) for c in contacts_clients(con)]
    if filled:
        raise CopyRefused(f"the target store is not empty ({', '.join(filled)}): copy only into a new database")


def _batches(con: Any, table: str, columns: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    cursor = con.execute(f"SELECT {', '.join(quote_name(c) for c in columns)} FROM {table}")
    while batch := cursor.fetchmany(BATCH_ROWS):
        yield batch


def _stream(src: Any, dst: Any, table: str, columns: list[str]) -> _Summed:
    """The source table's rows COPYed into the same table of the target, batch by batch; their checksum."""
    summed = _Summed()
    for batch in _batches(src, table, columns):
        dst.copy_rows(table, [quote_name(c) for c in columns], iter(summed.add(batch)))
    return summed


def _read_back(con: Any, table: str, columns: list[str]) -> _Summed:
    summed = _Summed()
    for batch in _batches(con, table, columns):
        summed.add(batch)
    return summed


def copy_store(source: Store, target: Store) -> tuple[list[TableCopy], float]:
    """Copy every table of `source` into the empty PostgreSQL store `target` in one transaction, then read
    each table back from the target and compare its row count and checksum; the tables and seconds taken.

    Raises CopyRefused when the target is not empty, or when a table read back differs (the
    target's transaction is then rolled back: it stays empty)."""
    started = time.monotonic()
    copied: list[TableCopy] = []
    with source.read() as src, target.write() as dst:
        _refuse_unless_empty(dst)
        with transaction(dst):
            plan = [(t, t, [name for name, _ in table_columns(src, t)]) for t in TABLES]
            for client in contacts_clients(src):
                stored = list(contact_columns(src, client).values())
                table = contacts_table(client)
                declared = ", ".join(
                    f"{quote_name(name)} {kind}{' PRIMARY KEY' if name == 'email_key' else ''}" for name, kind in stored
                )
                dst.execute(f"CREATE TABLE {table} ({declared})")
                plan.append((f"contacts_{client}", table, [name for name, _ in stored]))
            for name, quoted, columns in plan:
                sent = _stream(src, dst, quoted, columns)
                back = _read_back(dst, quoted, columns)
                if (back.rows, back.checksum) != (sent.rows, sent.checksum):
                    raise CopyRefused(
                        f"{name}: {sent.rows} rows sent but {back.rows} read back (checksums "
                        f"{sent.checksum} / {back.checksum}); nothing was copied"
                    )
                copied.append(TableCopy(name, sent.rows, sent.checksum))
    return copied, time.monotonic() - started
