"""What every table module shares: the backend's dialect, the transaction, and rows as dicts.

The table modules write one SQL text for both backends (`?` placeholders, standard SQL); where
DuckDB and PostgreSQL differ, the few spellings that differ are here, chosen by `dialect_of(con)`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any


class Dialect(StrEnum):
    """The store's backend: the embedded DuckDB file, or a PostgreSQL server."""

    DUCKDB = "duckdb"
    POSTGRES = "postgresql"


def dialect_of(con: Any) -> Dialect:
    """The dialect of a store connection (PostgreSQL's is a `PgConnection`, DuckDB's its own)."""
    return getattr(con, "dialect", Dialect.DUCKDB)


def latest(con: Any, value: str, order: str, where: str = "TRUE") -> str:
    """The aggregate giving the `value` of the row with the greatest `order` among those `where` it is not NULL."""
    if dialect_of(con) is Dialect.POSTGRES:
        return f"(array_agg({value} ORDER BY {order} DESC) FILTER (WHERE ({where}) AND {value} IS NOT NULL))[1]"
    return f"arg_max({value}, {order}) FILTER (WHERE {where})"


def quote_name(identifier: str) -> str:
    """An identifier quoted for SQL (a field's name may be any case, or a reserved word)."""
    return '"' + identifier.replace('"', '""') + '"'


@contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """BEGIN … COMMIT, rolled back on any error: a file's effects land together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def records(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """The rows of a query as dicts keyed by column name."""
    cursor = con.execute(sql, params or None)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
