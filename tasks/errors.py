"""What can be wrong with a file (rejected whole) or with a row (rejected alone): errors as data."""

from __future__ import annotations

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


class FileRejected(Exception):
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
