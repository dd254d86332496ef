"""XLSX and XLS reader on python-calamine (Rust; one well-kept reader for both formats).

Measured on a 5,000-row, 7-column XLSX (bench/bench_readers.py, raw cell reading): calamine
50-75 ms, openpyxl read-only 1.1-1.4 s, about 20x slower; openpyxl cannot read XLS at all.
Calamine's XML parser (quick-xml) expands no entities and reads no DTD, so XML bombs inside a
workbook do nothing; zip bombs are stopped here, before calamine sees the file, by capping the
uncompressed size (declared and actual) of the archive's members."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from python_calamine import CalamineWorkbook, PasswordError

from schemas.contract import Contract
from tasks.errors import FileRejected, RejectCode, RowError
from tasks.readers import RawTable

MAX_UNCOMPRESSED = 256 * 1024 * 1024  # far above any 5,000-row workbook; a zip bomb goes far beyond it
CHUNK = 1024 * 1024
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")  # the OLE stream of a password-protected XLSX

Cell = str | float | int | bool | date | datetime | time | timedelta | None


def cell_text(value: Cell) -> str:
    """A cell as text: whole numbers without '.0', dates as ISO, booleans as true/false, empty as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def check_zip(name: str, data: bytes) -> None:
    """Reject a corrupt XLSX, or one whose members would expand beyond MAX_UNCOMPRESSED (zip bomb).

    The declared sizes are checked first (instant for an honest bomb), then the real ones while
    decompressing in chunks (memory stays bounded even when the headers lie)."""
    limit = f"it would expand to more than {MAX_UNCOMPRESSED // 1024 // 1024} MB, which no contact list needs"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > MAX_UNCOMPRESSED:
                raise FileRejected(RejectCode.UNSAFE, name, f"The workbook is refused: {limit}.")
            total = 0
            for member in members:
                with archive.open(member) as stream:
                    while chunk := stream.read(CHUNK):
                        total += len(chunk)
                        if total > MAX_UNCOMPRESSED:
                            raise FileRejected(RejectCode.UNSAFE, name, f"The workbook is refused: {limit}.")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as exc:
        raise FileRejected(
            RejectCode.CORRUPT, name, f"The workbook is damaged or incomplete ({exc}); save it again and re-send it."
        ) from None


def _read(name: str, data: bytes, fmt: str) -> RawTable:
    """First sheet, first non-empty row the header; line numbers are sheet rows."""
    if fmt == "xls" and ENCRYPTED_STREAM in data:
        raise FileRejected(
            RejectCode.ENCRYPTED, name, "The workbook is password-protected; send it without a password."
        )
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            raise FileRejected(RejectCode.EMPTY, name, "The workbook has no sheet.")
        sheet = workbook.get_sheet_by_index(0)
        cells = sheet.to_python(skip_empty_area=True)
        first_row = sheet.start[0] if sheet.start else 0
    except PasswordError:
        raise FileRejected(
            RejectCode.ENCRYPTED, name, "The workbook is password-protected; send it without a password."
        ) from None
    except FileRejected:
        raise
    except Exception as exc:  # calamine raises several unrelated types for damaged files
        raise FileRejected(
            RejectCode.CORRUPT,
            name,
            f"The workbook is damaged or not a real {fmt.upper()} file ({type(exc).__name__}); save it again.",
        ) from None
    table = RawTable(file=name, format=fmt, header=[])
    width = 0
    for offset, raw in enumerate(cells):
        row = [cell_text(c) for c in raw]
        line = first_row + offset + 1
        if not any(v.strip() for v in row):
            continue
        if not table.header:
            while row and not row[-1].strip():
                row.pop()
            table.header, width = row, len(row)
            continue
        if any(v.strip() for v in row[width:]):
            table.row_errors.append(RowError(line, "", f"Too many fields: this row has values beyond column {width}."))
            continue
        table.rows.append(row[:width] + [""] * (width - len(row)))
        table.lines.append(line)
    return table


def read_xlsx(name: str, data: bytes, contract: Contract) -> RawTable:
    """Read an XLSX workbook after the zip-bomb check."""
    check_zip(name, data)
    return _read(name, data, "xlsx")


def read_xls(name: str, data: bytes, contract: Contract) -> RawTable:
    """Read a legacy Excel 97-2003 workbook."""
    return _read(name, data, "xls")
