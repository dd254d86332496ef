"""XLS (Excel 97-2003): read with calamine. Nothing writes it (openpyxl cannot).

A password-protected XLSX is an OLE container too, so it arrives here: its EncryptedPackage stream
tells it apart from a legacy workbook."""

from __future__ import annotations

from tasks.errors import FileRejected, RejectCode
from tasks.formats import RawTable, ReadOptions
from tasks.formats.excel import ENCRYPTED, read_sheet

ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")  # the OLE stream of a password-protected XLSX


def read(name: str, data: bytes, options: ReadOptions) -> RawTable:
    """Read a legacy workbook; refuse an encrypted one."""
    if ENCRYPTED_STREAM in data:
        raise FileRejected(RejectCode.ENCRYPTED, name, ENCRYPTED)
    return read_sheet(name, data, "xls")
