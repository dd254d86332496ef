"""The merged contacts: one table per client, `contacts_<id>`, upserted by the merge rule."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from schemas.field_types import FIELD_TYPES
from tasks.merge import MergeCounts, distinct_rows_sql, email_key, fold_sql
from tasks.store.sql import Dialect, dialect_of, latest, quote_name, records

if TYPE_CHECKING:
    import pandas as pd

    from schemas.contract import Contract

# One contacts table per client, `contacts_<id>`: a statement can only reach the table of the
# client id it is given, and an upsert reads and rewrites that client's rows only, however many
# contacts the other clients hold. Columns: email_key, each contract field by its xml name with
# its own type, first_file, last_file, updated_at.

CONTACT_META = ("email_key", "first_file", "last_file", "updated_at")
_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_INCOMING_FRAME = "_incoming_frame"  # DuckDB: the name the frame of a file's typed rows is registered under


class ContactsLayoutError(Exception):
    """The contract and the stored contacts table disagree in a way the import must not guess at."""


def contacts_table(client: str) -> str:
    """The quoted name of the client's own contacts table; anything but a valid client id is refused."""
    if not _CLIENT_ID.match(client):
        raise ValueError(f"not a valid client id: {client[:40]!r}")
    return quote_name(f"contacts_{client}")


_TYPE_NAMES = {  # the catalogs' type names, as the field types spell them (`FieldType.sql`)
    "CHARACTER VARYING": "VARCHAR",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
}


def table_columns(con: Any, table: str) -> list[tuple[str, str]]:
    """A table's columns in order: (name, type as the field types spell it); empty when there is no such table.

    DuckDB's from its own catalog: the same names and types as its information_schema view, which
    costs 3 ms on a store of a few hundred tables (once per imported file)."""
    if dialect_of(con) is Dialect.POSTGRES:
        sql = (
            "SELECT column_name, CASE WHEN data_type = 'numeric' "
            "THEN 'DECIMAL(' || numeric_precision || ',' || numeric_scale || ')' ELSE upper(data_type) END "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? "
            "ORDER BY ordinal_position"
        )
    else:
        sql = (
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE schema_name = current_schema() AND table_name = ? ORDER BY column_index"
        )
    return [(name, _TYPE_NAMES.get(kind, kind)) for name, kind in con.execute(sql, [table]).fetchall()]


def contact_columns(con: Any, client: str) -> dict[str, tuple[str, str]]:
    """The stored columns of the client's table: lower-cased name -> (name, type), in table order."""
    contacts_table(client)
    return {name.lower(): (name, kind) for name, kind in table_columns(con, f"contacts_{client}")}


def ensure_contacts_table(con: Any, contract: Contract) -> dict[str, str]:
    """Create the client's table, or add the columns of fields the contract gained; never drop one.

    Returns the stored field columns and their types (fields the contract dropped included, so
    their data is kept), in table order.
    A field whose type changed is refused: converting stored values needs a decision, not a guess."""
    seen: dict[str, str] = {name: name for name in CONTACT_META}
    for field in contract.fields:
        if field.id.lower() in seen:
            raise ContactsLayoutError(
                f"field {field.id!r} clashes with column {seen[field.id.lower()]!r} (names are case-insensitive)"
            )
        seen[field.id.lower()] = field.id
    table = contacts_table(contract.id)
    stored = contact_columns(con, contract.id)
    if not stored:
        columns = ", ".join(f"{quote_name(f.id)} {FIELD_TYPES[f.type].sql}" for f in contract.fields)
        key = "PRIMARY KEY" if dialect_of(con) is Dialect.POSTGRES else "NOT NULL"  # DuckDB: see upsert_contacts
        con.execute(
            f"CREATE TABLE {table} (email_key VARCHAR {key}, {columns}, "
            "first_file VARCHAR, last_file VARCHAR, updated_at TIMESTAMPTZ)"
        )
        return {f.id: FIELD_TYPES[f.type].sql for f in contract.fields}
    for field in contract.fields:
        wanted = FIELD_TYPES[field.type].sql
        if field.id.lower() not in stored:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_name(field.id)} {wanted}")
            stored[field.id.lower()] = (field.id, wanted)  # added last, as the table now has it
        elif stored[field.id.lower()][1] != wanted:
            raise ContactsLayoutError(
                f"field {field.id!r} is stored as {stored[field.id.lower()][1]} but the contract now says {wanted}"
            )
    return {name: kind for key, (name, kind) in stored.items() if key not in CONTACT_META}


def _listed(column: pd.Series) -> list[Any]:
    """A column's values as a list, None for empty however pandas marks it (None, NaN, NA, NaT)."""
    values = column.astype(object)
    return values.where(values.notna(), None).tolist()


def upsert_contacts(con: Any, contract: Contract, rows: pd.DataFrame, file: str, now: datetime) -> MergeCounts:
    """Merge a file's valid rows (typed values by xml name as `tasks.validate` gives them, and `_line`) into
    the client's contacts.

    The rows reach the store typed as `_incoming` (DuckDB: a view over a frame of the columns;
    PostgreSQL: a temp table filled by COPY). One query of `tasks.merge` folds them with the stored
    contacts of their emails. Only new contacts and contacts whose values change are
    written: in DuckDB the merged rows inserted straight from the query, then the rows they replace
    deleted (much cheaper there than an upsert, so its tables have no key), in PostgreSQL by
    INSERT … ON CONFLICT on the email key from a temp table of the merged rows.
    Call inside a transaction."""
    columns = ensure_contacts_table(con, contract)
    table = contacts_table(contract.id)
    fields = {f.id.lower(): f for f in contract.fields}
    values = [f"v{i}" for i in range(len(columns))]  # stored columns (dropped fields too), by position
    typed = {i: fields[name.lower()] for i, name in enumerate(columns) if name.lower() in fields}
    postgres = dialect_of(con) is Dialect.POSTGRES
    kinds = {"k": "VARCHAR", "o": "INTEGER", **{f"v{i}": FIELD_TYPES[f.type].sql for i, f in typed.items()}}
    keys = list(map(email_key, rows[contract.email_field.id]))
    if postgres:
        _copy_incoming(con, kinds, [keys, rows["_line"].tolist(), *(_listed(rows[f.id]) for f in typed.values())])
    else:
        import pandas as pd  # here, not at the top: the CLI's status and --help never load pandas

        frame = pd.DataFrame(  # the file's columns as they are: not copied into one block (15 MB at 150,000 rows)
            {
                "k": pd.Series(keys, index=rows.index, dtype=object),
                "o": rows["_line"],
                **{f"v{i}": rows[f.id] for i, f in typed.items()},
            },
            copy=False,
        )
        _scan_incoming(con, kinds, frame)
    keys_unique = len(set(keys)) == len(keys)  # then every row is distinct too, and nothing to fold in the file
    distinct = len(rows)
    if not keys_unique:
        email = contract.email_field.id.lower()
        (distinct,) = con.execute(
            distinct_rows_sql("_incoming", [f"v{i}" for i, f in typed.items() if f.id.lower() != email])
        ).fetchone()
    stored = ", ".join(f"{quote_name(name)} AS v{i}" for i, name in enumerate(columns))
    incoming = ", ".join(
        v if i in typed else f"CAST(NULL AS {columns[name]}) AS {v}"
        for i, (v, name) in enumerate(zip(values, columns, strict=True))
    )
    # PostgreSQL finds the stored contacts of the file's emails by its key's index; DuckDB's join reads the
    # client's table once either way, and the filter would scan the frame a second time (−8% of the statement)
    of_the_file = "WHERE email_key IN (SELECT k FROM _incoming)" if postgres else ""
    merged = fold_sql(
        f"SELECT email_key AS k, {stored}, first_file AS f FROM {table} {of_the_file}",
        f"SELECT k, o, {incoming} FROM _incoming",
        values,
        lambda v: latest(con, v, "o"),
        keys_unique=keys_unique,
    )
    quoted = [quote_name(name) for name in columns]
    into = f"INSERT INTO {table} (email_key, {', '.join(quoted)}, first_file, last_file, updated_at) SELECT k, "
    into += f"{', '.join(values)}, COALESCE(f, ?), ?, ? FROM"
    written_only = "WHERE is_new OR is_changed"
    if postgres:
        con.execute(f"CREATE TEMP TABLE _upsert AS {merged}")
        updated_columns = ", ".join(f"{c} = excluded.{c}" for c in [*quoted, "last_file", "updated_at"])
        con.execute(
            f"{into} _upsert {written_only} ON CONFLICT (email_key) DO UPDATE SET {updated_columns}", [file, file, now]
        )
        emails, new, updated = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE is_changed) FROM _upsert"
        ).fetchone()
        con.execute("DROP TABLE _upsert")
    else:
        # the merged contacts go straight into the table (a temp table of them held 30 MB at 150,000 rows
        # until the commit); then the rows they replace go: the other rows of the emails this file wrote
        # (no stored row names the file as its last: a file is imported once)
        (written,) = con.execute(f"{into} ({merged}) AS m {written_only}", [file, file, now]).fetchone()
        (updated,) = con.execute(
            f"DELETE FROM {table} WHERE last_file IS DISTINCT FROM ? "
            f"AND email_key IN (SELECT email_key FROM {table} WHERE last_file = ?)",
            [file, file],
        ).fetchone()
        emails, new = len(set(keys)), written - updated
    _drop_incoming(con)
    return MergeCounts.of(len(rows), int(distinct), int(emails), int(new), int(updated))


def _copy_incoming(con: Any, columns: dict[str, str], lists: list[list[Any]]) -> None:
    """PostgreSQL: the temp table `_incoming` of these columns (name: SQL type), the lists' values COPYed in."""
    con.execute(f"CREATE TEMP TABLE _incoming ({', '.join(f'{c} {kind}' for c, kind in columns.items())})")
    con.copy_rows("_incoming", list(columns), zip(*lists, strict=True))
    # no ANALYZE: statistics would copy contacts' values into pg_statistic


def _scan_incoming(con: Any, columns: dict[str, str], frame: pd.DataFrame) -> None:
    """DuckDB: the temp view `_incoming` of these columns (name: SQL type) over the frame, scanned where the
    merge reads it. Not a temp table: DuckDB would hold that copy (37 MB at 150,000 rows) in memory until
    the transaction ends, dropped or not; the view lowers the peak and costs no time."""
    con.register(_INCOMING_FRAME, frame)
    cast = ", ".join(f"CAST({c} AS {kind}) AS {c}" for c, kind in columns.items())
    con.execute(f"CREATE OR REPLACE TEMP VIEW _incoming AS SELECT {cast} FROM {_INCOMING_FRAME}")


def _drop_incoming(con: Any) -> None:
    """`_incoming` gone: PostgreSQL's temp table, or DuckDB's view and the frame under it."""
    if dialect_of(con) is Dialect.POSTGRES:
        con.execute("DROP TABLE _incoming")
        return
    con.execute("DROP VIEW _incoming")
    con.unregister(_INCOMING_FRAME)


def read_contacts(con: Any, contract: Contract) -> list[dict[str, Any]]:
    """The client's merged contacts keyed by the contract's xml names (empty before the first import)."""
    stored = contact_columns(con, contract.id)
    if not stored:
        return []
    select = ", ".join(
        (quote_name(stored[f.id.lower()][0]) if f.id.lower() in stored else "NULL") + f" AS {quote_name(f.id)}"
        for f in contract.fields
    )
    return records(con, f"SELECT {select} FROM {contacts_table(contract.id)} ORDER BY email_key")
