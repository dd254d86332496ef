"""Readers: bytes in, a table of strings with source line numbers out (or a FileRejected).

One module per format, chosen by the file's extension, or by its content where the extension lies
(an .xls that is really an XLSX zip or a CSV text export, an .xlsx that is a legacy workbook)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from schemas.contract import Contract
from tasks.errors import FileRejected, RejectCode, RowError
from tasks.settings import ACCEPTED_EXTENSIONS

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass
class RawTable:
    """A file as read: header and cells as text ('' for empty), with the source line of each row."""

    file: str
    format: str  # "csv" | "xlsx" | "xls" | "xml"
    header: list[str]  # as found (BOM stripped); for XML the element names seen inside the records
    rows: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    row_errors: list[RowError] = field(default_factory=list)  # structural: the line alone is rejected
    warnings: list[str] = field(default_factory=list)


Reader = Callable[[str, bytes, Contract], RawTable]


def _reader(fmt: str) -> Reader:
    """The reader of a format, imported on first use (openpyxl/calamine are not needed to read a CSV)."""
    if fmt == "csv":
        from tasks.readers import csv

        return csv.read_csv
    if fmt == "xml":
        from tasks.readers import xml

        return xml.read_xml
    from tasks.readers import excel

    return excel.read_xlsx if fmt == "xlsx" else excel.read_xls


def detect_format(name: str, data: bytes) -> str:
    """The format to read `data` as: the content's signature where it has one, else the extension."""
    ext = PurePosixPath(name).suffix.lower()
    if ext not in ACCEPTED_EXTENSIONS:
        raise FileRejected(
            RejectCode.EXTENSION, name, f"'{ext or name}' files are not accepted: send .csv, .xlsx, .xls or .xml."
        )
    if data.startswith(ZIP_MAGIC):
        return "xlsx"
    if data.startswith(OLE_MAGIC):
        return "xls"  # a legacy workbook, or an encrypted XLSX (an OLE container too): excel tells them apart
    if ext in (".xls", ".xlsx"):
        return "csv"  # a text export saved under an Excel name
    return ext[1:]


def read_bytes(name: str, data: bytes, contract: Contract) -> RawTable:
    """Read a file's bytes with the reader its format calls for."""
    fmt = detect_format(name, data)
    table = _reader(fmt)(name, data, contract)
    ext = PurePosixPath(name).suffix.lower()[1:]
    if fmt != ext:
        table.warnings.append(
            f"The file is named .{ext} but its content is {fmt.upper()}; it was read as {fmt.upper()}."
        )
    return table
