"""Sample files made from a client's contract: its header (or element names) in order and a few rows
that pass validation. `write_rows` also writes any typed contacts, for the round-trip tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from schemas.contacts import Value
from schemas.contract import Contract, ContractField

Format = Literal["csv", "xlsx", "xml"]
Record = dict[str, Value]  # typed values by the fields' xml names
SAMPLE_ROWS = 3
TEXTS = {  # example texts by a word in the field's name; first names otherwise
    "id": ("00123", "00456", "00789"),
    "number": ("00123", "00456", "00789"),
    "last": ("Jansen", "de Vries", "Martin"),
    "country": ("Netherlands", "Germany", "France"),
}
NAMES = ("Anna", "Bram", "Chloé")
CARRIAGE_RETURN = {"\r": "&#13;"}  # a raw CR would be read back as a line feed (XML end-of-line handling)
DATE_FORMAT, DATETIME_FORMAT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss"


def example_value(field: ContractField, row: int) -> Value:
    """A plausible value of a field for the sample's n-th row (every row valid, every field filled)."""
    examples: dict[str, Sequence[Value]] = {
        "email": ("anna.jansen@example.com", "bram.devries@example.org", "chloe.martin@example.net"),
        "string": next((texts for word, texts in TEXTS.items() if word in field.name.lower().split()), NAMES),
        "integer": (0, 120, 4500),
        "decimal": (Decimal("19.99"), Decimal("250.00"), Decimal("1234.50")),
        "date": (date(2024, 1, 15), date(2024, 2, 29), date(2024, 12, 31)),
        "datetime": (
            datetime(2024, 1, 15, 9, 30),
            datetime(2024, 2, 29, 13, 5, 10),
            datetime(2024, 12, 31, 23, 59, 59),
        ),
        "boolean": (True, False, True),
        "enum": field.values or (),
    }
    options = examples[field.type]
    return options[row % len(options)]


def sample_records(contract: Contract) -> list[Record]:
    """The sample's rows, typed."""
    return [{f.xml: example_value(f, i) for f in contract.fields} for i in range(SAMPLE_ROWS)]


def to_text(field: ContractField, value: Value) -> str:
    """A typed value as it is written in a CSV or XML file (dates ISO, or the contract's date format)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.strftime(field.format) if field.format else value.isoformat()
    return str(value)


def _csv(contract: Contract, records: list[Record], delimiter: str, encoding: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([f.name for f in contract.fields])
    writer.writerows([to_text(f, r.get(f.xml)) for f in contract.fields] for r in records)
    return out.getvalue().encode(encoding)


def _xlsx_cell(sheet: object, value: Value) -> WriteOnlyCell:
    """A cell of the value's Excel type; text stays text even when it starts with '=' (no formula)."""
    if isinstance(value, Decimal):
        as_float = float(value)
        cell = WriteOnlyCell(sheet, value=as_float if Decimal(repr(as_float)) == value else format(value, "f"))
    else:
        cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    elif isinstance(value, datetime):
        cell.number_format = DATETIME_FORMAT
    elif isinstance(value, date):
        cell.number_format = DATE_FORMAT
    return cell


def _xlsx(contract: Contract, records: list[Record]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Contacts")
    sheet.append([f.name for f in contract.fields])
    for record in records:
        sheet.append([_xlsx_cell(sheet, record.get(f.xml)) for f in contract.fields])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _xml(contract: Contract, records: list[Record]) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<contacts>\n']
    for record in records:
        parts.append("  <contact>\n")
        for f in contract.fields:
            text = escape(to_text(f, record.get(f.xml)), CARRIAGE_RETURN)
            parts.append(f"    <{f.xml}>{text}</{f.xml}>\n" if text else f"    <{f.xml}/>\n")
        parts.append("  </contact>\n")
    parts.append("</contacts>\n")
    return "".join(parts).encode("utf-8")


def write_rows(contract: Contract, records: list[Record], fmt: Format, *, encoding: str = "utf-8") -> bytes:
    """Typed contacts as a file of the format (CSV with the contract's delimiter, in `encoding`)."""
    if fmt == "csv":
        return _csv(contract, records, contract.csv.delimiter, encoding)
    if fmt == "xlsx":
        return _xlsx(contract, records)
    return _xml(contract, records)


def write_sample(contract: Contract, fmt: Format) -> bytes:
    """The client's sample file: the header or element names in order, and a few valid rows."""
    return write_rows(contract, sample_records(contract), fmt)
