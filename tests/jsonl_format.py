"""A format plug-in that exists only for the tests: JSON Lines, one contact object per line, keyed by
the fields' xml names. It shows that a format is one module and one registry line."""

from __future__ import annotations

import json

from schemas.contract import Contract
from schemas.field_types import to_text
from schemas.samples import Record
from tasks.errors import FileRejected, RejectCode
from tasks.formats import FileFormat, RawTable, ReadOptions

FORMAT = FileFormat("jsonl", (".jsonl",), "tests.jsonl_format", named_columns=True)  # the registry line


def read(name: str, data: bytes, options: ReadOptions) -> RawTable:
    """One JSON object of texts per non-blank line; the file is refused when a line is not JSON."""
    try:
        records = [(n, json.loads(text)) for n, text in enumerate(data.decode("utf-8").splitlines(), 1) if text.strip()]
    except ValueError as exc:
        raise FileRejected(RejectCode.CORRUPT, name, f"The file is not JSON Lines: {exc}.") from None
    header = list(dict.fromkeys(key for _, record in records for key in record))
    table = RawTable(file=name, format="jsonl", header=header, encoding="utf-8")
    for line, record in records:
        table.add([record.get(key, "") for key in header], line)
    return table


def write(contract: Contract, records: list[Record], encoding: str) -> bytes:
    """One JSON object per contact, every field as its text form."""
    objects = ({f.id: to_text(f, r.get(f.id)) for f in contract.fields} for r in records)
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode(encoding)
