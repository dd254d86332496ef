"""XLSX: read with calamine after a zip-bomb check; written with openpyxl (samples, tests).

Zip bombs are stopped before calamine sees the file, by capping the uncompressed size (declared and
actual) of the archive's members (tasks/formats/expansion.py)."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from schemas.contract import Contract
from schemas.field_types import FIELD_TYPES
from tasks.errors import FileRejected, RejectCode
from tasks.formats import RawTable, ReadOptions
from tasks.formats.excel import read_sheet
from tasks.formats.expansion import ZIP_ERRORS, ExpansionCap

if TYPE_CHECKING:
    from openpyxl.cell import WriteOnlyCell

    from schemas.contacts import Value
    from schemas.samples import Record

DATE_FORMAT, DATETIME_FORMAT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss"
NUMBER_DIGITS = 15  # significant digits a spreadsheet number keeps (Excel's; openpyxl writes 16)


def check_zip(name: str, data: bytes) -> None:
    """Reject a corrupt XLSX, or one whose members would expand beyond the cap (zip bomb)."""
    cap = ExpansionCap(name, "The workbook")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            cap.declared(sum(m.file_size for m in members))
            for member in members:
                with archive.open(member) as stream:
                    for _chunk in cap.chunks(stream):
                        pass
    except ZIP_ERRORS as exc:
        raise FileRejected(
            RejectCode.CORRUPT, name, f"The workbook is damaged or incomplete ({exc}); save it again and re-send it."
        ) from None


def read(name: str, data: bytes, options: ReadOptions) -> RawTable:
    """Read an XLSX workbook after the zip-bomb check."""
    check_zip(name, data)
    return read_sheet(name, data, "xlsx")


def _fill(cell: WriteOnlyCell, value: Value) -> WriteOnlyCell:
    """The cell set to the value in its Excel type; text stays text even when it starts with '=' (no formula)."""
    if isinstance(value, Decimal):  # a number when the sheet keeps it exactly, else its exact text
        as_float = float(value)
        exact = Decimal(format(as_float, f".{NUMBER_DIGITS}g")) == value
        cell.value = as_float if exact else FIELD_TYPES["decimal"].text(value)
    else:
        cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
    elif isinstance(value, datetime):
        cell.number_format = DATETIME_FORMAT
    elif isinstance(value, date):
        cell.number_format = DATE_FORMAT
    return cell


def write(contract: Contract, records: list[Record], encoding: str) -> bytes:
    """Typed contacts as a one-sheet workbook under a header row of the contract's field names.

    openpyxl (~0.25 s to import) is imported here: reading an XLSX does not need it."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Contacts")
    sheet.append([f.name for f in contract.fields])
    for record in records:
        sheet.append([_fill(WriteOnlyCell(sheet), record.get(f.id)) for f in contract.fields])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
