"""Sample files made from a client's contract: its header (or element names) in order and a few rows
that pass validation, in any format of the registry that writes (tasks/formats). `write_rows` also
writes any typed contacts, for the round-trip tests."""

from __future__ import annotations

from schemas.contract import Contract, ContractField
from schemas.field_types import FIELD_TYPES, Value
from tasks import formats

Record = dict[str, Value]  # typed values by the fields' xml names
SAMPLE_ROWS = 3


def example_value(field: ContractField, row: int) -> Value:
    """A plausible value of a field for the sample's n-th row (every row valid, every field filled)."""
    options = FIELD_TYPES[field.type].examples(field)
    return options[row % len(options)]


def sample_records(contract: Contract) -> list[Record]:
    """The sample's rows, typed."""
    return [{f.id: example_value(f, i) for f in contract.fields} for i in range(SAMPLE_ROWS)]


def write_rows(contract: Contract, records: list[Record], fmt: str, *, encoding: str = "utf-8") -> bytes:
    """Typed contacts as a file of the format named `fmt` (`encoding` for the formats that take one)."""
    return formats.get(fmt).write(contract, records, encoding)


def write_sample(contract: Contract, fmt: str) -> bytes:
    """The client's sample file: the header or element names in order, and a few valid rows."""
    return write_rows(contract, sample_records(contract), fmt)
