"""Whose a failure is, which decides whether a task is retried: transient I/O only."""

from __future__ import annotations

import asyncssh
import duckdb
import pytest

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
