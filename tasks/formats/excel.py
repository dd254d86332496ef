"""Spreadsheets on python-calamine (Rust; one well-kept reader for XLSX and XLS): the first sheet as a table.

Measured on a 5,000-row, 7-column XLSX (bench/bench_readers.py, raw cell reading): calamine
50-75 ms, openpyxl read-only 1.1-1.4 s, about 20x slower; openpyxl cannot read XLS at all.
Calamine's XML parser (quick-xml) expands no entities and reads no DTD, so XML bombs inside a
workbook do nothing; zip bombs are stopped before calamine sees the file (tasks/formats/xlsx.py); a
workbook that makes calamine abort kills only its worker process (`sheet_process.py`)."""

from __future__ import annotations

from tasks.errors import FileRejected, RejectCode, RowError
from tasks.formats import RawTable
from tasks.formats.sheet_process import SheetUnreadable, read_first_sheet

ENCRYPTED = "The workbook is password-protected; send it without a password."


def read_sheet(name: str, data: bytes, fmt: str) -> RawTable:
    """The first sheet as a table of format `fmt`: its first non-empty row the header, line numbers sheet rows.

    Calamine runs in a worker process (`sheet_process`): a workbook that makes it abort is rejected as
    damaged, and the import goes on."""
    damaged = f"The workbook is damaged or not a real {fmt.upper()} file"
    try:
        outcome, first_row, cells = read_first_sheet(data)
    except SheetUnreadable:
        raise FileRejected(RejectCode.CORRUPT, name, f"{damaged}; save it again.") from None
    if outcome == "password":
        raise FileRejected(RejectCode.ENCRYPTED, name, ENCRYPTED)
    if outcome == "empty":
        raise FileRejected(RejectCode.EMPTY, name, "The workbook has no sheet.")
    if outcome == "damaged":
        raise FileRejected(RejectCode.CORRUPT, name, f"{damaged} ({first_row}); save it again.")
    table = RawTable(file=name, format=fmt, header=[])
    width = 0
    for offset, row in enumerate(cells):
        line = first_row + offset + 1
        if not "".join(row).strip():  # blank: every cell empty or spaces
            continue
        if not table.header:
            while row and not row[-1].strip():
                row.pop()
            table.header, width = row, len(row)
            continue
        if "".join(row[width:]).strip():
            table.row_errors.append(RowError(line, "", f"Too many fields: this row has values beyond column {width}."))
            continue
        table.add(row[:width] + [""] * (width - len(row)), line)
    return table
