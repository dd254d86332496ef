"""The cap on what compressed bytes may expand to: zip, gzip and PGP bombs are refused as they stream.

Shared by the XLSX reader (a workbook is a zip) and the unwrapping of compressed and encrypted
uploads (tasks/formats/unwrap.py, tasks/formats/pgp.py)."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from typing import Protocol

from tasks.errors import FileRejected, RejectCode

MAX_UNCOMPRESSED = 256 * 1024 * 1024  # far above any 5,000-row contact list; a bomb goes far beyond it
CHUNK = 1024 * 1024
# what reading a damaged zip (a workbook or an upload) raises, member data included (inflate errors)
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError, zlib.error)


class Readable(Protocol):
    """A binary stream: a decompressor (gzip, zip member) or a process's output."""

    def read(self, size: int, /) -> bytes: ...


class ExpansionCap:
    """The bytes one file may expand to, counted across its streams.

    Declared sizes are checked first (instant for an honest bomb), then the real ones chunk by
    chunk as they stream: memory stays bounded even when the headers lie."""

    def __init__(self, name: str, what: str, limit: int = MAX_UNCOMPRESSED) -> None:
        self.name, self.what, self.limit = name, what, limit
        self.spent = 0

    def refusal(self) -> FileRejected:
        """The rejection of a file that would expand beyond the cap."""
        return FileRejected(
            RejectCode.UNSAFE,
            self.name,
            f"{self.what} is refused: it would expand to more than {self.limit // 1024 // 1024} MB, "
            "which no contact list needs.",
        )

    def declared(self, size: int) -> None:
        """Refuse a size the archive's headers announce beyond the cap."""
        if size > self.limit:
            raise self.refusal()

    def chunks(self, stream: Readable) -> Iterator[bytes]:
        """The stream's bytes, CHUNK at a time; refused the moment the running total passes the cap."""
        while chunk := stream.read(CHUNK):
            self.spent += len(chunk)
            if self.spent > self.limit:
                raise self.refusal()
            yield chunk

    def read(self, stream: Readable) -> bytes:
        """The whole stream, within the cap."""
        return b"".join(self.chunks(stream))
