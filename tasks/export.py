"""Exports for people and other systems: a client's merged contacts (CSV/JSON) and a file's row errors (CSV).

Keys and headers are the contract's field names. Values are each type's JSON or text form
(schemas/field_types.py), exact: decimals as plain text (no float rounding), dates and times in
ISO 8601. The errors CSV neutralises formula-looking cells, since it is opened in spreadsheets and
its messages can quote what a client sent."""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from schemas.contract import Contract
from schemas.field_types import JsonValue, to_json, to_text

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def contact_records(contract: Contract, rows: list[dict[str, Any]]) -> list[dict[str, JsonValue]]:
    """Stored contacts (keyed by xml name) as JSON-native records keyed by the contract's field names."""
    return [{f.name: to_json(f, row[f.id]) for f in contract.fields} for row in rows]


def write_contacts_json(contract: Contract, rows: list[dict[str, Any]], out: TextIO) -> None:
    """A JSON list of objects, one per contact."""
    json.dump(contact_records(contract, rows), out, ensure_ascii=False, indent=2)
    out.write("\n")


def write_contacts_csv(contract: Contract, rows: list[dict[str, Any]], out: TextIO) -> None:
    """A CSV with the contract's field names as header and its delimiter; values in their text form."""
    writer = csv.writer(out, delimiter=contract.csv.delimiter, lineterminator="\n")
    writer.writerow([f.name for f in contract.fields])
    writer.writerows([to_text(f, row[f.id]) for f in contract.fields] for row in rows)


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, made plain text with a leading apostrophe."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def write_errors_csv(errors: list[dict[str, Any]], out: TextIO) -> None:
    """A file's row errors (line, field, message) as CSV safe to open in a spreadsheet."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["line", "field", "message"])
    for error in errors:
        writer.writerow([error["line"], neutralise(str(error["field"])), neutralise(str(error["message"]))])
