"""What every table module shares: the transaction, and rows as dicts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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
    cursor = con.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
