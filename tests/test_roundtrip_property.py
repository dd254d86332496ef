"""Property: contacts generated from a contract, written in any accepted format and read back through
parse_file, come back identical (leading zeros, NA-like words, formula-like text, accents, emoji)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas import field_types
from schemas.contract import Contract, CsvOptions, load_contracts
from schemas.samples import Record, write_rows
from tasks.formats import FORMATS
from tasks.validate import parse_file
from tests.importing import typed_records

CONTRACTS = load_contracts(Path(__file__).parents[1] / "examples" / "clients")
TRICKY = (
    "007",
    "00042",
    "NA",
    "N/A",
    "None",
    "null",
    "nan",
    "",
    '=HYPERLINK("http://x.io","click")',
    "Zoë Ørsted",
    "😀 émoji",
    'a,b;c"d',
)


def text(codec: str, fmt: str) -> st.SearchStrategy[str]:
    """Free text the format and encoding can carry: no control characters but line feeds and tabs."""
    extra = "\n\t\r" if fmt != "xlsx" else "\n\t"
    chars = st.characters(codec=codec, exclude_categories=("Cc", "Cs")) | st.sampled_from(extra)
    tricky = [t for t in TRICKY if t.encode(codec, errors="ignore").decode(codec) == t]
    strategy = st.text(chars, max_size=12) | st.sampled_from(tricky)
    if fmt == "xlsx":  # openpyxl writes whitespace-only text without xml:space="preserve"
        strategy = strategy.filter(lambda s: s.strip() != "" or s == "")
    return strategy


def records(contract: Contract, codec: str, fmt: str) -> st.SearchStrategy[list[Record]]:
    record = st.fixed_dictionaries({f.id: field_types.strategy(f, text(codec, fmt)) for f in contract.fields})
    return st.lists(record, min_size=1, max_size=4)


DELIMITERS: tuple[str, ...] = get_args(CsvOptions.model_fields["delimiter"].annotation)
VARIANTS = [  # every format that writes, in each encoding and (delimited ones) with each delimiter it takes
    (f.name, delimiter, encoding)
    for f in FORMATS
    if f.writes
    for delimiter in (DELIMITERS if f.delimited else (None,))
    for encoding in f.encodings or ("utf-8",)
]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize(("fmt", "delimiter", "encoding"), VARIANTS)
@pytest.mark.parametrize("client", sorted(CONTRACTS))
def test_roundtrip(client: str, fmt: str, delimiter: str | None, encoding: str) -> None:
    contract = CONTRACTS[client]
    if delimiter:
        contract = contract.model_copy(update={"csv": CsvOptions(delimiter=delimiter)})
    codec = "utf-8" if encoding.startswith("utf") else encoding

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records(contract, codec, fmt))
    def roundtrip(contacts: list[Record]) -> None:
        data = write_rows(contract, contacts, fmt, encoding=encoding)
        # cp1252 text whose bytes also happen to be valid UTF-8 ("Â¡" is C2 A1, UTF-8 for "¡") cannot be
        # told apart: it is read as UTF-8, by design (tests/test_readers_csv.py shows that case)
        assume(encoding != "cp1252" or data.isascii() or not _is_utf8(data))
        parsed = parse_file(f"c.{fmt}", data, contract, max_bytes=10**8, warn_bytes=10**7)
        assert parsed.errors == []
        assert typed_records(parsed, contract) == contacts
        if delimiter:
            ascii_only = encoding == "cp1252" and data.isascii()  # plain ASCII is valid UTF-8 too
            assert (parsed.encoding, parsed.delimiter) == ("utf-8" if ascii_only else encoding, contract.csv.delimiter)

    roundtrip()
