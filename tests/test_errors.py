"""Whose a failure is, which decides whether a task is retried: transient I/O only."""

from __future__ import annotations

import os
import socket

import asyncssh
import duckdb
import pytest

from deployments.postgres import Cluster, create_database
from tasks.backfill import BackfillRefused
from tasks.errors import Fault, FileRejected, RejectCode, fault_of
from tasks.sftp import HostKeyRejected, SftpConfigError


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (ConnectionRefusedError(111, "refused"), Fault.TRANSIENT),  # the server is down: it may be back
        (TimeoutError(), Fault.TRANSIENT),
        (asyncssh.ConnectionLost("lost"), Fault.TRANSIENT),  # not an OSError, still transport
        (duckdb.IOException("Could not set lock on file"), Fault.TRANSIENT),
        (FileNotFoundError("the staged copy is gone"), Fault.CONFIGURATION),  # a retry does not bring it back
        (PermissionError(), Fault.CONFIGURATION),
        (SftpConfigError("no known_hosts"), Fault.CONFIGURATION),
        (HostKeyRejected("unknown host key"), Fault.CONFIGURATION),
        (FileRejected(RejectCode.HEADER, "a.csv", "bad header"), Fault.CLIENT_DATA),
        (BackfillRefused("a.csv was already imported"), Fault.CLIENT_DATA),
        (KeyError("email"), Fault.BUG),
        (ValueError("unknown client"), Fault.BUG),
    ],
)
def test_each_failure_says_whose_it_is(error: BaseException, fault: Fault) -> None:
    assert fault_of(error) is fault


def test_postgresql_gone_is_transient_and_a_bad_statement_is_a_bug(postgres: Cluster) -> None:
    """Real psycopg errors: the store's server refusing, then dropping, a connection may be back at the
    retry; a statement the server refuses fails the same every time."""
    import psycopg

    with socket.socket() as unused:  # a port nothing listens on: the server is down
        unused.bind(("127.0.0.1", 0))
        refused = f"postgresql://postgres@127.0.0.1:{unused.getsockname()[1]}/postgres?connect_timeout=5"
        with pytest.raises(psycopg.OperationalError) as down:
            psycopg.connect(refused)
    assert fault_of(down.value) is Fault.TRANSIENT

    url = create_database(postgres, f"errors_{os.getpid()}")
    with psycopg.connect(url, autocommit=True) as victim, psycopg.connect(url, autocommit=True) as admin:
        with pytest.raises(psycopg.Error) as bad:
            victim.execute("SELECT * FROM no_such_table")
        assert fault_of(bad.value) is Fault.BUG
        admin.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])  # as a server restart does
        with pytest.raises(psycopg.OperationalError) as dropped:
            victim.execute("SELECT 1")
        assert fault_of(dropped.value) is Fault.TRANSIENT
