"""CSV reader: encodings, BOMs, quoting, line numbers, structural row errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.contract import Contract, load_contracts
from tasks import formats
from tasks.errors import FileRejected, RejectCode
from tasks.formats import read_bytes

CONTRACTS = load_contracts(Path(__file__).parents[1] / "examples" / "clients")
NORTHWIND: Contract = CONTRACTS["northwind"]
HEADER = "Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment"


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16"),
        ("utf-16-be", "utf-16"),
        ("cp1252", "cp1252"),
    ],
)
def test_encodings_detected_and_bom_never_in_header(encoding: str, expected: str) -> None:
    text = HEADER + "\r\nzoë@example.com,Zoë,Müller,007,01/02/2024,1.5,SMB\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    table = read_bytes("c.csv", data, NORTHWIND)
    assert table.encoding == expected
    assert table.header[0] == "Email"
    assert table.rows == [["zoë@example.com", "Zoë", "Müller", "007", "01/02/2024", "1.5", "SMB"]]
    assert table.delimiter == ","


def test_cp1252_bytes_that_are_valid_utf8_are_read_as_utf8() -> None:
    """The bytes cannot tell: 'Â¡' in cp1252 is C2 A1, which is UTF-8 for '¡'. UTF-8 wins, by design
    (clients are told to save as CSV UTF-8); a real cp1252 name almost never forms valid UTF-8."""
    data = (HEADER + "\na@x.io,Â¡,,,,,\n").encode("cp1252")
    table = read_bytes("c.csv", data, NORTHWIND)
    assert table.encoding == "utf-8"
    assert table.rows[0][1] == "¡"


def test_quotes_delimiters_and_newlines_inside_fields_and_physical_lines() -> None:
    text = HEADER + '\na@x.io,"Smith, J","multi\nline\nname",1,,,\nb@x.io,"say ""hi""",x,2,,,\n\nc@x.io,,,3,,,\n'
    table = read_bytes("c.csv", text.encode(), NORTHWIND)
    assert table.rows[0][1:3] == ["Smith, J", "multi\nline\nname"]
    assert table.rows[1][1] == 'say "hi"'
    assert table.lines == [2, 5, 7]  # the record after a 3-line record starts on line 5; a blank line is skipped


def test_text_kept_as_written() -> None:
    text = HEADER + "\na@x.io,NA,None,00042,null,,N/A\n"
    table = read_bytes("c.csv", text.encode(), NORTHWIND)
    assert table.rows == [["a@x.io", "NA", "None", "00042", "null", "", "N/A"]]


def test_wrong_field_count_rejects_that_line_only() -> None:
    text = HEADER + "\na@x.io,1,2,3,4,5,6,7\nb@x.io,only\nc@x.io,,,,,,\n"
    table = read_bytes("c.csv", text.encode(), NORTHWIND)
    assert [(e.line, e.field) for e in table.row_errors] == [(2, ""), (3, "")]
    assert "Too many fields: 8 instead of 7" in table.row_errors[0].message
    assert "Too few fields: 2 instead of 7" in table.row_errors[1].message
    assert table.lines == [4]


def test_semicolon_contract() -> None:
    text = "email;name;loyalty_points;opted_in;last_visit\na@x.io;Ann, Jr;1;yes;\n"
    table = read_bytes("c.csv", text.encode(), CONTRACTS["contoso"])
    assert table.delimiter == ";"
    assert table.rows == [["a@x.io", "Ann, Jr", "1", "yes", ""]]


def test_xls_name_with_csv_content_is_read_as_csv() -> None:
    table = read_bytes("export.xls", (HEADER + "\na@x.io,,,,,,\n").encode(), NORTHWIND)
    assert table.format == "csv"
    assert any("read as CSV" in w for w in table.warnings)


def test_undecodable_bytes_and_nul_are_rejected() -> None:
    with pytest.raises(FileRejected) as bad:
        read_bytes("c.csv", HEADER.encode() + b"\n\x81\x8d\n", NORTHWIND)
    assert bad.value.code == RejectCode.ENCODING
    with pytest.raises(FileRejected) as nul:
        read_bytes("c.csv", HEADER.encode("utf-16-le"), NORTHWIND)  # UTF-16 without its BOM
    assert nul.value.code == RejectCode.ENCODING


def test_unaccepted_extension() -> None:
    with pytest.raises(FileRejected) as exc:
        read_bytes("c.txt", b"x", NORTHWIND)
    assert exc.value.code == RejectCode.EXTENSION


def test_rows_are_kept_by_column_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "CHUNK_ROWS", 3)  # 8 rows: two chunks joined while reading, two rows after
    rows = [[f"p{i}@example.com", "Ann", "Lee", f"{i:03}", "", "", "SMB"] for i in range(8)]
    lines = [HEADER] + [",".join(row) for row in rows]
    lines.insert(4, "x@example.com,too,few")  # a row error between chunks: its line only
    table = read_bytes("c.csv", ("\n".join(lines) + "\n").encode(), NORTHWIND)
    assert table.rows == rows
    assert table.lines == [2, 3, 4, 6, 7, 8, 9, 10]
    assert [e.line for e in table.row_errors] == [5]
    assert table.take_columns() == [list(column) for column in zip(*rows, strict=True)]
    assert (table.take_columns(), table.rows) == ([], [[]] * 8)  # handed over: the table keeps no cells


def test_a_repeating_column_shares_its_texts_and_a_distinct_one_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "CHUNK_ROWS", 4)
    rows = [[f"p{i % 7}@example.com", "Ann", "Lee", f"{i:03}", "", "", "Mid-Market"] for i in range(8)]
    table = read_bytes("c.csv", "\n".join([HEADER] + [",".join(row) for row in rows]).encode(), NORTHWIND)
    assert table.rows == rows
    email, *_, segment = table.take_columns()
    assert all(cell is segment[0] for cell in segment)  # one str for the column's one text
    # the first chunk's emails were all distinct: the eighth, equal to the first, is not looked up
    assert email[7] == email[0] and email[7] is not email[0]
