"""Every file of ../shared/corpora ends in rows or one clear rejection: no crash, hang or entity expanded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from schemas.contract import Contract, load_contracts
from schemas.samples import Record, write_rows
from tasks.errors import FileRejected, RejectCode
from tasks.formats import read_bytes, writable
from tasks.validate import parse_file
from tests.conftest import EXAMPLE_CLIENTS, SHARED

CORPORA = SHARED / "corpora"
NORTHWIND: Contract = load_contracts(EXAMPLE_CLIENTS)["northwind"]
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0, nor by openpyxl


def corpus_files(folder: str, pattern: str) -> list[Path]:
    """A corpus's files; none is an error at collection, not a test skipped for an empty parameter set."""
    files = sorted((CORPORA / folder).glob(pattern))
    if not files:
        raise FileNotFoundError(f"no {pattern} in {CORPORA / folder}: the tests read ../shared beside the project")
    return files


SPECTRUM = corpus_files("csv-spectrum/csvs", "*.csv")
ATTACKS = corpus_files("xml-attacks", "*.xml")


def naughty_strings() -> list[str]:
    lines = (CORPORA / "naughty-strings" / "blns.txt").read_text(encoding="utf-8").split("\n")
    return [line for line in lines if line and not line.startswith("#")]


def expected_records(path: Path) -> list[dict[str, str]]:
    """The records the JSON says the CSV parses to, corrected where the stored corpus differs from it.

    The *_crlf.csv files were stored with LF line ends (no CR left), so a quoted CRLF is a LF here;
    location_coordinates.json is a single object whose phone number differs from the CSV's (upstream)."""
    expected = json.loads((path.parents[1] / "json" / f"{path.stem}.json").read_text(encoding="utf-8"))
    records: list[dict[str, str]] = expected if isinstance(expected, list) else [expected]
    if b"\r" not in path.read_bytes():
        records = [{k: v.replace("\r\n", "\n") for k, v in r.items()} for r in records]
    if path.stem == "location_coordinates":
        records[0]["Contact Phone Number"] = "2095257564"
    return records


@pytest.mark.parametrize("path", SPECTRUM, ids=lambda p: p.name)
def test_csv_spectrum_matches_its_json(path: Path) -> None:
    table = read_bytes(path.name, path.read_bytes(), NORTHWIND)
    expected = expected_records(path)
    assert [dict(zip(table.header, row, strict=True)) for row in table.rows] == expected
    assert table.row_errors == []


@pytest.mark.parametrize("path", SPECTRUM, ids=lambda p: p.name)
def test_csv_spectrum_against_a_contract_is_one_clear_rejection(path: Path) -> None:
    with pytest.raises(FileRejected) as exc:
        parse_file(path.name, path.read_bytes(), NORTHWIND, max_bytes=10**8, warn_bytes=10**7)
    assert exc.value.code == RejectCode.HEADER


@pytest.mark.timeout(10)
@pytest.mark.parametrize("path", ATTACKS, ids=lambda p: p.name)
def test_xml_attacks_rejected_never_expanded(path: Path) -> None:
    with pytest.raises(FileRejected) as exc:
        parse_file(path.name, path.read_bytes(), NORTHWIND, max_bytes=10**8, warn_bytes=10**7)
    expected = RejectCode.XML_NAMES if path.name == "simple.xml" else RejectCode.UNSAFE
    assert exc.value.code == expected


@pytest.mark.parametrize("fmt", writable())
def test_naughty_strings_come_back_unchanged(fmt: str) -> None:
    values = naughty_strings()
    if fmt != "csv":
        values = [v for v in values if not XML_ILLEGAL.search(v)]
    if fmt == "xlsx":  # openpyxl writes whitespace-only text without xml:space="preserve" (Excel does not)
        values = [v for v in values if v.strip()]
    records: list[Record] = [{"email": f"n{i}@example.com", "first_name": v} for i, v in enumerate(values)]
    parsed = parse_file(f"n.{fmt}", write_rows(NORTHWIND, records, fmt), NORTHWIND, max_bytes=10**8, warn_bytes=10**7)
    assert parsed.errors == []
    assert parsed.rows["first_name"].tolist() == values
