"""What can be wrong: with a file (rejected whole), a row (rejected alone), or a run, and whether a
retry helps (`fault_of`: the tasks' retry conditions read it)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum


class RejectCode(StrEnum):
    """Why a whole file is rejected."""

    EXTENSION = "extension"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    TOO_MANY_ROWS = "too_many_rows"
    HEADER = "header"
    XML_NAMES = "xml_names"
    CORRUPT = "corrupt"
    UNSAFE = "unsafe"
    ENCRYPTED = "encrypted"
    ENCODING = "encoding"
    ARCHIVE = "archive"  # a .gz/.zip that is not one, or a zip not holding exactly one file at its top level
    DECRYPT = "decrypt"  # a PGP file the platform's key cannot decrypt (another key, a password, damaged)
    SIGNATURE = "signature"  # the contract's key requires a valid signature: missing, bad or another key's
    ERASED = "erased"  # its staged copy held a person erased on request (GDPR art. 17) before its import


class Fault(StrEnum):
    """Whose a failure is, which says whether another attempt can help."""

    TRANSIENT = "transient"  # a dropped connection, a server restarting, a busy store: a retry may succeed
    CONFIGURATION = "configuration"  # the platform's settings, keys or folders: ops fix them; a retry fails the same
    CLIENT_DATA = "client data"  # the client's file or request: only the client (or an engineer's rename) fixes it
    BUG = "bug"  # anything else: a retry would only hide it


class ConfigurationError(Exception):
    """The platform's configuration cannot work as it is (a setting, a key, a missing folder)."""


class ClientDataError(Exception):
    """The client's data or an engineer's request cannot be processed as it is."""


# errors from these libraries are transport or store I/O (asyncssh's disconnects are not OSErrors)
TRANSPORT_MODULES = ("asyncssh", "sshfs", "duckdb", "httpx", "httpcore", "fsspec")
MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def fault_of(error: BaseException) -> Fault:
    """Classify a failure: the client's data, configuration (a missing folder or file too: a retry
    seconds later does not bring it back), transient I/O, or a bug."""
    if isinstance(error, ClientDataError):
        return Fault.CLIENT_DATA
    if isinstance(error, (ConfigurationError, *MISSING)):
        return Fault.CONFIGURATION
    if (
        isinstance(error, OSError | TimeoutError)
        or type(error).__module__.split(".")[0].lstrip("_") in TRANSPORT_MODULES
        or _postgres_unavailable(error)
    ):
        return Fault.TRANSIENT
    return Fault.BUG


def _postgres_unavailable(error: BaseException) -> bool:
    """psycopg's OperationalError: the store's PostgreSQL refused or dropped the connection, is shutting
    down or restarting, the pool timed out, or a deadlock or serialization failure rolled back. Its
    other errors (a bad statement, a broken constraint) are bugs: a retry would fail the same."""
    psycopg = sys.modules.get("psycopg")  # not loaded: the error cannot be one of its
    return psycopg is not None and isinstance(error, psycopg.OperationalError)


class FileRejected(ClientDataError):
    """A file that cannot be imported at all, with a message the client can act on."""

    def __init__(self, code: RejectCode, file: str, message: str) -> None:
        self.code = code
        self.file = file
        self.message = message
        super().__init__(f"{file}: {message}")


@dataclass(frozen=True)
class RowError:
    """One rejected value: the source line (1 = header line for CSV/Excel), the field and why.

    `message` never holds the value itself when the value may be personal data (emails)."""

    line: int
    field: str
    message: str


def where(line: int, field: str) -> str:
    """'line 7, Amount', or 'line 7' for an error of the whole line (wrong field count)."""
    return f"line {line}, {field}" if field else f"line {line}"
