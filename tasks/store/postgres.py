"""The PostgreSQL store: for a platform on several machines (`SFTP_IMPORT_STORE_URL=postgresql://…`).

No platform-wide lock: any number of processes read and write at once. What must not run twice at
once for one client (its import run, its sync's ledger write, its purge) holds the client's
advisory lock for the block (`write(client=…)`); PostgreSQL frees it when the holder's connection
ends, a killed process's included. Connections come from a pool per process."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tasks.store.connection import LOCK_RETRY_SECONDS
from tasks.store.sql import Dialect

log = logging.getLogger(__name__)

LOCK_KEY = "hashtextextended(?, 0)"  # an advisory lock's 64-bit key, from its name
MIGRATION_LOCK = "sftp-import:migrations"
POOL_SIZE = 16  # connections per process: a daily slot's client imports run in threads, each holding one
POOL_WAIT_SECONDS = 300.0  # a thread waits this long for a free connection of its process's pool


class PgConnection:
    """A PostgreSQL connection speaking the table modules' SQL: `?` placeholders, rows as tuples."""

    dialect = Dialect.POSTGRES

    def __init__(self, raw: Any) -> None:
        self.raw = raw  # a psycopg connection in autocommit mode (`transaction` sends BEGIN/COMMIT)

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> Any:
        """Run one statement (or several without parameters); the cursor."""
        if params:
            sql = sql.replace("%", "%%").replace("?", "%s")
        return self.raw.execute(sql, params or None)

    def copy_rows(self, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
        """COPY rows into a table (psycopg dumps each value by its Python type)."""
        listed = ", ".join(columns)
        with self.raw.cursor() as cursor, cursor.copy(f"COPY {table} ({listed}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def lock_client(self, client: str) -> None:
        """Hold the client's advisory lock (this connection's session), waiting for its holder like the
        DuckDB writer lock does, and saying who that is."""
        key = [f"client:{client}"]
        if self.execute(f"SELECT pg_try_advisory_lock({LOCK_KEY})", key).fetchone()[0]:
            return
        holder = self.execute(
            "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            f"WHERE l.locktype = 'advisory' AND l.granted AND l.objid = ({LOCK_KEY} & 4294967295)::oid",
            key,
        ).fetchone()
        log.info("%s: waiting for the client's store lock, held by %s", client, holder or "another process")
        self.execute(f"SELECT pg_advisory_lock({LOCK_KEY})", key)


def _configure(raw: Any) -> None:
    """Each pooled connection: autocommit (transactions are explicit), UTC, Python str sent as text, and
    the command and pid as its application name (who holds a client's lock, in `pg_stat_activity`)."""
    from psycopg.types.string import StrDumper

    raw.autocommit = True
    raw.adapters.register_dumper(str, StrDumper)  # so `unnest(?::VARCHAR[])` of a list of str is text[], not unknown
    raw.execute("SET TimeZone = 'UTC'")
    command = " ".join(Path(arg).name if n == 0 else arg for n, arg in enumerate(sys.argv[:3]))
    raw.execute("SELECT set_config('application_name', %s, false)", [f"{command[:48]} (pid {os.getpid()})"])


class PostgresStore:
    """The store in a PostgreSQL database: pooled connections, migrated on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._opening = threading.Lock()

    def __repr__(self) -> str:  # a URL may carry a password: never print it
        return f"PostgresStore({self.location})"

    @property
    def location(self) -> str:
        """Where the store is, for messages: host, port and database, without user or password."""
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(self.url)
        return f"postgresql://{parts.get('host', '')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"

    def _connections(self) -> Any:
        """The process's pool, opened and the store migrated on first use."""
        with self._opening:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                from tasks.store.schema import migrate

                pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=POOL_SIZE,
                    configure=_configure,
                    check=ConnectionPool.check_connection,  # an idle connection a server restart broke is replaced
                    open=True,
                )
                atexit.register(pool.close)
                with pool.connection() as raw:
                    con = PgConnection(raw)
                    con.execute(f"SELECT pg_advisory_lock({LOCK_KEY})", [MIGRATION_LOCK])
                    try:
                        migrate(con)
                    finally:
                        con.execute("SELECT pg_advisory_unlock_all()")
                self._pool = pool
            return self._pool

    @contextmanager
    def _connection(self, client: str | None, wait_seconds: float) -> Iterator[PgConnection]:
        from psycopg.pq import TransactionStatus

        with self._connections().connection(timeout=max(wait_seconds, POOL_WAIT_SECONDS)) as raw:
            con = PgConnection(raw)
            if client is None:
                yield con
                return
            con.lock_client(client)
            try:
                yield con
            finally:
                if raw.info.transaction_status == TransactionStatus.IDLE:
                    con.execute("SELECT pg_advisory_unlock_all()")
                elif not raw.closed:
                    raw.close()  # mid-transaction: closing frees the lock; the pool replaces the connection

    def close(self) -> None:
        """Close the pool: its connections end (and any lock they held)."""
        with self._opening:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def read(self, wait_seconds: float = LOCK_RETRY_SECONDS) -> Any:
        """A connection for reading (the same as for writing: PostgreSQL needs no writer lock)."""
        return self._connection(None, wait_seconds)

    def write(self, wait_seconds: float = LOCK_RETRY_SECONDS, client: str | None = None) -> Any:
        """A connection for writing; with `client`, holding that client's lock while it is open."""
        return self._connection(client, wait_seconds)
