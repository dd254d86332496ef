"""Spreadsheets on python-calamine (Rust; one well-kept reader for XLSX and XLS): the first sheet as a table.

Measured on a 5,000-row, 7-column XLSX (bench/bench_readers.py, raw cell reading): calamine
50-75 ms, openpyxl read-only 1.1-1.4 s, about 20x slower; openpyxl cannot read XLS at all.
Calamine's XML parser (quick-xml) expands no entities and reads no DTD, so XML bombs inside a
workbook do nothing; zip bombs are stopped before calamine sees the file (tasks/formats/xlsx.py)."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from python_calamine import CalamineWorkbook, PasswordError

from schemas.field_types import FIELD_TYPES
from tasks.errors import FileRejected, RejectCode, RowError
from tasks.formats import RawTable

ENCRYPTED = "The workbook is password-protected; send it without a password."

Cell = str | float | int | bool | date | datetime | time | timedelta | None


def cell_text(value: Cell) -> str:
    """A cell as text, empty as ''; a typed cell in the text form of its type (schemas/field_types.py),
    so it parses as that type: whole numbers without '.0', exact decimals, ISO dates, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return FIELD_TYPES["boolean"].text(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return FIELD_TYPES["integer"].text(int(value))
        return FIELD_TYPES["decimal"].text(Decimal(repr(value)))
    if isinstance(value, datetime):
        return FIELD_TYPES["datetime"].text(value)
    if isinstance(value, date):
        return FIELD_TYPES["date"].text(value)
    if isinstance(value, time):
        return value.isoformat()
    return str(value)


def read_sheet(name: str, data: bytes, fmt: str) -> RawTable:
    """The first sheet as a table of format `fmt`: its first non-empty row the header, line numbers sheet rows."""
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            raise FileRejected(RejectCode.EMPTY, name, "The workbook has no sheet.")
        sheet = workbook.get_sheet_by_index(0)
        cells = sheet.to_python(skip_empty_area=True)
        first_row = sheet.start[0] if sheet.start else 0
    except PasswordError:
        raise FileRejected(RejectCode.ENCRYPTED, name, ENCRYPTED) from None
    except FileRejected:
        raise
    except BaseException as exc:  # calamine raises several unrelated types for damaged files
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # an interrupt or an exit, not the file; a Rust panic of the parser (pyo3) is the file's
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
