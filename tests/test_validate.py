"""parse_file: whole-file rejections (as the client reads them), row errors with lines, typed values."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from schemas.contract import Contract, load_contracts
from tasks.errors import FileRejected, RejectCode
from tasks.validate import ParsedFile, parse_file

CONTRACTS = load_contracts(Path(__file__).parents[1] / "examples" / "clients")
NORTHWIND: Contract = CONTRACTS["northwind"]
CONTOSO: Contract = CONTRACTS["contoso"]
HEADER = "Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
CONTOSO_HEADER = "email;name;loyalty_points;opted_in;last_visit\n"


def parse(name: str, data: bytes | str, contract: Contract = NORTHWIND, max_bytes: int = 10**8) -> ParsedFile:
    raw = data.encode() if isinstance(data, str) else data
    return parse_file(name, raw, contract, max_bytes=max_bytes, warn_bytes=10**6)


def rejection(name: str, data: bytes | str, contract: Contract = NORTHWIND, max_bytes: int = 10**8) -> FileRejected:
    with pytest.raises(FileRejected) as exc:
        parse(name, data, contract, max_bytes)
    return exc.value


def test_typed_values_and_kept_rows() -> None:
    parsed = parse(
        "c.csv",
        HEADER + " Ann@X.io ,Ann,NA,007,31/01/2024,-12.50,mid-market\nb@x.io,,,,2024-02-29,1E5,\nc@x.io,,,,,,\n",
    )
    assert parsed.rows.columns.tolist() == [f.id for f in NORTHWIND.fields] + ["_line"]
    first, third = parsed.rows.to_dict("records")
    assert first == {
        "email": "Ann@X.io",
        "first_name": "Ann",
        "last_name": "NA",
        "account_id": "007",
        "purchase_date": date(2024, 1, 31),
        "amount": "-12.50",  # exactly as written: the store's DECIMAL reads the text
        "segment": "Mid-Market",
        "_line": 2,
    }
    assert third["first_name"] is None and third["amount"] is None and third["_line"] == 4
    assert [(e.line, e.field) for e in parsed.errors] == [(3, "Amount")]
    assert parsed.rows_read == 3 and parsed.encoding == "utf-8" and parsed.delimiter == ","


def test_contoso_types() -> None:
    parsed = parse(
        "c.csv",
        CONTOSO_HEADER + "a@x.io;Ann;42;YES;2024-03-01T10:00:00+02:00\nb@x.io;Bob;-1;n;2024-03-01 10:00\n"
        "c@x.io;Cy;1.5;maybe;2024-02-30T00:00\n",
        CONTOSO,
    )
    a, b = parsed.rows.to_dict("records")
    assert (a["LoyaltyPoints"], a["OptedIn"], a["LastVisit"]) == (42, True, datetime(2024, 3, 1, 8, 0))
    assert (b["OptedIn"], b["LastVisit"]) == (False, datetime(2024, 3, 1, 10, 0))
    assert [(e.line, e.field, e.message) for e in parsed.errors] == [
        (4, "loyalty_points", "'1.5' is not a whole number."),
        (4, "opted_in", "'maybe' is not a yes/no value; use true/false, yes/no, y/n or 1/0."),
        (4, "last_visit", "'2024-02-30T00:00' is not a valid date and time; write it as YYYY-MM-DDThh:mm:ss."),
    ]


def test_row_errors_name_line_field_and_reason_without_the_email() -> None:
    text = HEADER + (
        'not-an-email,"two\nlines",,,31/02/2024,abc,Gold\n'
        ",x,,,,1.12345678901,\n"
        "d@x.io,,,,,12345678901234567890123456789,\n"
        "e@x.io,too,few\n"
        "f@x.io,,,,,,\n"
    )
    parsed = parse("c.csv", text)
    assert [(e.line, e.field, e.message) for e in parsed.errors] == [
        (2, "Email", "Not a valid email address."),
        (2, "Purchase Date", "'31/02/2024' is not a valid date; write it as DD/MM/YYYY or YYYY-MM-DD."),
        (2, "Amount", "'abc' is not a number; use digits and a dot for decimals (e.g. 1234.50)."),
        (2, "Segment", "'Gold' is not an allowed value; use one of: SMB, Mid-Market, Enterprise."),
        (4, "Email", "Email is required."),
        (4, "Amount", "'1.12345678901' has 11 decimal places; at most 10 are allowed."),
        (5, "Amount", "'12345678901234567890123456789' has more than 28 digits before the decimal point."),
        (6, "", "Too few fields: 3 instead of 7 (check the quotes and ',')."),
    ]
    assert parsed.rows["_line"].tolist() == [7]
    assert parsed.rows_read == 5


@pytest.mark.parametrize(
    ("name", "data", "columns"),
    [
        ("c.csv", HEADER, HEADER.strip().split(",")),
        ("c.csv", HEADER.strip(), HEADER.strip().split(",")),  # no line break after the header
        ("c.xml", "<contacts/>", []),
        ("c.xml", '<?xml version="1.0"?>\n<contacts>\n</contacts>\n', []),
    ],
)
def test_a_header_or_root_and_no_rows_is_a_file_of_zero_rows(name: str, data: str, columns: list[str]) -> None:
    """A day with no new contacts is not an error: read, checked, 0 rows, nothing rejected."""
    parsed = parse(name, data)
    assert (parsed.rows_read, len(parsed.rows), parsed.errors, parsed.columns) == (0, 0, [], columns)
    assert parsed.rows.columns.tolist() == [f.id for f in NORTHWIND.fields] + ["_line"]


def test_a_missing_header_row_never_repeats_the_email_it_found() -> None:
    exc = rejection("c.csv", "ada@example.com,Ada,L,1,,,\n")
    assert exc.code == RejectCode.HEADER and "@" not in exc.message
    assert "column 1 is an email address (is the header row missing?)" in exc.message


def test_xml_errors_use_element_names_and_record_lines() -> None:
    xml = (
        "<contacts>\n<contact>\n<email>a@x.io</email>\n</contact>\n"
        "<contact><email/><amount>x</amount></contact>\n</contacts>"
    )
    parsed = parse("c.xml", xml)
    assert [(e.line, e.field) for e in parsed.errors] == [(5, "email"), (5, "amount")]
    assert parsed.rows.to_dict("records")[0]["email"] == "a@x.io"
    assert parsed.rows["_line"].tolist() == [2]


@pytest.mark.parametrize(
    ("name", "data", "code", "message"),
    [
        ("c.csv", "", RejectCode.EMPTY, "The file is empty."),
        ("c.csv", "\ufeff\r\n", RejectCode.EMPTY, "The file is empty: no header row and no contacts."),
        (
            "c.csv",
            HEADER.replace(",", ";") + "a@x.io;;;;;;\n",
            RejectCode.HEADER,
            "The header does not match the contract (1 column, the contract has 7): column 1 is "
            "'Email;First Name;Last Name;Account ID;Purchase Date;Amount;Segment' but the contract expects 'Email'. "
            "The file looks semicolon-separated (';'), but this contract expects comma-separated values (','): "
            "save it with ',' as the separator. Expected columns, in order: Email, First Name, Last Name, Account ID, "
            "Purchase Date, Amount, Segment.",
        ),
        (
            "c.csv",
            "Email,Last Name,First Name,Account ID,Purchase Date,Amount,Segment\na@x.io,,,,,,\n",
            RejectCode.HEADER,
            "The header does not match the contract: column 2 is 'Last Name' but the contract expects 'First Name'. "
            "Expected columns, in order: Email, First Name, Last Name, Account ID, Purchase Date, Amount, Segment.",
        ),
        (
            "c.csv",
            "Email,First Name\na@x.io,x\n",
            RejectCode.HEADER,
            "The header does not match the contract (2 columns, the contract has 7): column 3 'Last Name' is missing. "
            "Expected columns, in order: Email, First Name, Last Name, Account ID, Purchase Date, Amount, Segment.",
        ),
        (
            "c.xml",
            "<contacts><contact><Email>a@x.io</Email><phone>1</phone></contact></contacts>",
            RejectCode.XML_NAMES,
            "The XML has elements that are not in the contract: <Email> (did you mean <email>? names are "
            "case-sensitive), <phone>. Allowed elements: email, first_name, last_name, account_id, purchase_date, "
            "amount, segment.",
        ),
    ],
)
def test_whole_file_rejections(name: str, data: str, code: RejectCode, message: str) -> None:
    exc = rejection(name, data)
    assert (exc.code, exc.message) == (code, message)


def test_comma_file_against_semicolon_contract_gets_a_hint() -> None:
    exc = rejection("c.csv", CONTOSO_HEADER.replace(";", ",") + "a@x.io,x,,,\n", CONTOSO)
    assert "The file looks comma-separated (',')" in exc.message


def test_too_many_rows_and_too_large() -> None:
    small = NORTHWIND.model_copy(update={"max_rows": 2})
    exc = rejection("c.csv", HEADER + "a@x.io,,,,,,\n" * 2 + "bad\n", small)
    assert (exc.code, exc.message) == (
        RejectCode.TOO_MANY_ROWS,
        "The file has 3 contact rows; the limit is 2 per file. Split it into smaller files.",
    )
    big = rejection("c.csv", HEADER + "a@x.io,,,,,,\n" * 100, max_bytes=1024)
    assert big.code == RejectCode.TOO_LARGE
    assert big.message == "The file is 1,367 bytes; the limit is 1,024 bytes. Split it into smaller files."


def test_warning_over_recommended_size() -> None:
    data = HEADER + "a@x.io,,,,,,\n" + ("b@x.io," + "x" * 200 + ",,,,,\n") * 6000
    many = NORTHWIND.model_copy(update={"max_rows": 10_000})
    parsed = parse_file("c.csv", data.encode(), many, max_bytes=10**8, warn_bytes=1024 * 1024)
    assert parsed.warnings == ["The file is 1.2 MB; please keep files under 1.0 MB."]


def test_an_email_in_a_shifted_column_is_not_repeated_in_the_error() -> None:
    from schemas.contacts import cell_reader
    from schemas.contract import ContractField

    with pytest.raises(ValueError) as raised:
        cell_reader(ContractField(name="Amount", xml="amount", type="decimal"))("bob@example.com")
    assert "bob" not in str(raised.value) and "not a number" in str(raised.value)


def test_a_whole_number_beyond_the_store_range_is_a_row_error() -> None:
    from schemas.contacts import cell_reader
    from schemas.contract import ContractField

    points = ContractField(name="Points", xml="points", type="integer")
    assert cell_reader(points)(str(2**63 - 1)) == 2**63 - 1
    with pytest.raises(ValueError, match="too large"):
        cell_reader(points)(str(2**63))


def test_repeated_texts_are_typed_and_rejected_on_every_line_they_are_on() -> None:
    """Each distinct text is parsed once per column: its value and its reason reach every row that holds it."""
    rows = [
        "a@x.io,null,,007,2024-01-31, 1.50,SMB",
        "b@x.io,None,,007,2024-01-31,abc,smb",
        "c@x.io,,,  ,2024-01-31,1.50,SMB",
        "d@x.io,NA,,007,31/01/2024,abc,Gold",
        "e@x.io,null,,0070,2024-01-31,1.50 ,SMB",
    ]
    parsed = parse("c.csv", HEADER + "\n".join(rows) + "\n")
    bad_amount = "'abc' is not a number; use digits and a dot for decimals (e.g. 1234.50)."
    assert [(e.line, e.field, e.message) for e in parsed.errors] == [
        (3, "Amount", bad_amount),
        (5, "Amount", bad_amount),
        (5, "Segment", "'Gold' is not an allowed value; use one of: SMB, Mid-Market, Enterprise."),
    ]
    kept = parsed.rows.to_dict("records")
    assert [r["_line"] for r in kept] == [2, 4, 6]
    assert [r["first_name"] for r in kept] == ["null", None, "null"]
    assert [r["account_id"] for r in kept] == ["007", "  ", "0070"]
    assert [r["amount"] for r in kept] == ["1.50"] * 3
    assert [r["segment"] for r in kept] == ["SMB", "SMB", "SMB"]


def test_the_garbage_collector_is_back_on_after_a_file() -> None:
    """parse_file pauses the cyclic collector while it reads; it is on again after, file kept or rejected."""
    import gc

    assert len(parse("c.csv", HEADER + "a@x.io,,,,,1.5,\n").rows) == 1
    assert gc.isenabled()
    assert rejection("c.csv", "Email\n").code == RejectCode.HEADER
    assert gc.isenabled()
