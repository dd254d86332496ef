"""Exports for people and other systems: a client's merged contacts (CSV/JSON) and a file's row errors (CSV).

Keys and headers are the contract's field names. Values are exact: decimals as plain text (no float
rounding), dates and times in ISO 8601. The errors CSV neutralises formula-looking cells, since it
is opened in spreadsheets and its messages can quote what a client sent."""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from typing import Any, TextIO

from schemas.contract import Contract

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def json_value(value: Any) -> Any:
    """A stored value as JSON-native data: decimals as exact strings, dates/times ISO."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text if text != "-0" else "0"
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return value


def contact_records(contract: Contract, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored contacts (keyed by xml name) as records keyed by the contract's field names."""
    return [{f.name: json_value(row[f.xml]) for f in contract.fields} for row in rows]


def write_contacts_json(contract: Contract, rows: list[dict[str, Any]], out: TextIO) -> None:
    """A JSON list of objects, one per contact."""
    json.dump(contact_records(contract, rows), out, ensure_ascii=False, indent=2)
    out.write("\n")


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_contacts_csv(contract: Contract, rows: list[dict[str, Any]], out: TextIO) -> None:
    """A CSV with the contract's field names as header and its delimiter."""
    writer = csv.writer(out, delimiter=contract.csv.delimiter, lineterminator="\n")
    writer.writerow([f.name for f in contract.fields])
    for record in contact_records(contract, rows):
        writer.writerow([_csv_text(v) for v in record.values()])


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, made plain text with a leading apostrophe."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def write_errors_csv(errors: list[dict[str, Any]], out: TextIO) -> None:
    """A file's row errors (line, field, message) as CSV safe to open in a spreadsheet."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["line", "field", "message"])
    for error in errors:
        writer.writerow([error["line"], neutralise(str(error["field"])), neutralise(str(error["message"]))])
