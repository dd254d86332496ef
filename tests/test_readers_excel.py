"""Excel reader: LibreOffice-made XLSX and XLS, cell types, zip bombs, damaged and encrypted workbooks."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from schemas.contract import Contract, load_contracts
from schemas.samples import write_rows
from tasks.errors import FileRejected, RejectCode
from tasks.formats import OLE_MAGIC, read_bytes
from tasks.formats.sheet_process import cell_text
from tasks.validate import parse_file

DATA = Path(__file__).parent / "data"
CONTRACTS = load_contracts(Path(__file__).parents[1] / "examples" / "clients")
NORTHWIND: Contract = CONTRACTS["northwind"]


@pytest.mark.parametrize("name", ["northwind.xlsx", "northwind.xls"])
def test_libreoffice_workbooks(name: str) -> None:
    parsed = parse_file(name, (DATA / name).read_bytes(), NORTHWIND, max_bytes=10**8, warn_bytes=10**7)
    assert parsed.format == name.rsplit(".", 1)[1]
    rows = parsed.rows.to_dict("records")
    assert [r["account_id"] for r in rows] == ["00123", "12345", "00789"]  # text kept, number cell without '.0'
    assert [r["purchase_date"] for r in rows] == [date(2024, 1, 15), date(2024, 2, 29), date(2024, 12, 31)]
    assert [r["amount"] for r in rows] == ["19.99", "250", "1234.50"]
    assert [r["_line"] for r in rows] == [2, 3, 4]
    assert {(e.line, e.field) for e in parsed.errors} == {(5, "Email"), (5, "Purchase Date"), (5, "Segment")}


def test_extension_that_lies_is_read_by_content() -> None:
    xlsx = (DATA / "northwind.xlsx").read_bytes()
    assert read_bytes("contacts.xls", xlsx, NORTHWIND).format == "xlsx"
    assert read_bytes("contacts.xlsx", (DATA / "northwind.xls").read_bytes(), NORTHWIND).format == "xls"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (12345.0, "12345"),
        (0.1, "0.1"),
        (-1234.5, "-1234.5"),
        (1e-7, "0.0000001"),  # Python writes it with an exponent: the decimal text has none
        (1e20, "100000000000000000000"),
        (True, "true"),
        ("007", "007"),
    ],
)
def test_cell_text(value: float | bool | str | None, text: str) -> None:
    assert cell_text(value) == text


@pytest.mark.parametrize(
    "amount", ["112889334313.83182", "1234567890.123456", "123456789012.345", "19.99", "0.1", "-99999999999999.9"]
)
def test_a_decimal_written_to_a_workbook_reads_back_exactly(amount: str) -> None:
    """A sheet's number keeps 15 significant digits: a decimal with more is written as its text, not rounded
    (17 digits were written as a 16-digit number and read back changed)."""
    record = {f.id: None for f in NORTHWIND.fields} | {"email": "a@x.io", "amount": Decimal(amount)}
    data = write_rows(NORTHWIND, [record], "xlsx")
    parsed = parse_file("c.xlsx", data, NORTHWIND, max_bytes=10**8, warn_bytes=10**7)
    assert parsed.errors == []
    assert parsed.rows["amount"].tolist() == [amount]


def test_datetime_cells_and_leading_blank_rows() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append([])
    sheet.append(["email", "name", "loyalty_points", "opted_in", "last_visit"])
    sheet.append(["a@x.io", "Ann", 12, True, datetime(2024, 5, 6, 7, 8, 9)])
    out = io.BytesIO()
    workbook.save(out)
    parsed = parse_file("c.xlsx", out.getvalue(), CONTRACTS["contoso"], max_bytes=10**8, warn_bytes=10**7)
    assert parsed.rows.to_dict("records") == [
        {
            "Email": "a@x.io",
            "Name": "Ann",
            "LoyaltyPoints": 12,
            "OptedIn": True,
            "LastVisit": datetime(2024, 5, 6, 7, 8, 9),
            "_line": 3,
        }
    ]


def test_blank_rows_are_skipped_and_a_value_beyond_the_header_is_a_row_error() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    space = "\u00a0"  # a cell of spaces (a no-break one: plain spaces are not kept in the workbook)
    sheet.append(["email", "name", "loyalty_points", "opted_in", "last_visit", None, space])  # spaces end no header
    sheet.append(["a@x.io", "Ann", 12, True, None])
    sheet.append([space, None, space * 2])  # blank: skipped, no error
    sheet.append(["b@x.io", "Bo", None, None, None, None, "extra"])
    sheet.append(["c@x.io", "Cy", None, None, None, space, None])  # spaces beyond the header: nothing there
    out = io.BytesIO()
    workbook.save(out)
    parsed = parse_file("c.xlsx", out.getvalue(), CONTRACTS["contoso"], max_bytes=10**8, warn_bytes=10**7)
    assert [(r["Email"], r["_line"]) for r in parsed.rows.to_dict("records")] == [("a@x.io", 2), ("c@x.io", 5)]
    assert [(e.line, e.message) for e in parsed.errors] == [
        (4, "Too many fields: this row has values beyond column 5.")
    ]


def zip_bomb(gigabytes: int, declared: int | None = None) -> bytes:
    """A zip whose one sheet expands to `gigabytes` GB of spaces, a few MB on disk.

    One 16 MB block is deflated once and its bytes repeated (a full flush makes each copy
    independent), so making the bomb costs no more than compressing 16 MB."""
    unit = 16 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(b" " * unit) + compressor.flush(zlib.Z_FULL_FLUSH)
    copies = gigabytes * 64
    body = block * copies + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    size = unit * copies if declared is None else declared
    name = b"xl/worksheets/sheet1.xml"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, 0, len(body), size, len(name), 0) + name
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, 0, len(body), size, len(name), 0, 0, 0, 0, 0, 0
    )
    central += name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(body), 0)
    return local + body + central + end


@pytest.mark.parametrize("declared", [None, 1000], ids=["honest-sizes", "lying-sizes"])
def test_zip_bomb_rejected_fast_with_bounded_memory(declared: int | None) -> None:
    bomb = zip_bomb(2, declared)
    assert len(bomb) < 8 * 1024 * 1024
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(FileRejected) as exc:
        read_bytes("bomb.xlsx", bomb, NORTHWIND)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert exc.value.code in (RejectCode.UNSAFE, RejectCode.CORRUPT)
    assert elapsed < 5
    assert peak < 64 * 1024 * 1024


def test_expanding_beyond_the_cap_is_unsafe() -> None:
    with pytest.raises(FileRejected) as exc:
        read_bytes("bomb.xlsx", zip_bomb(1), NORTHWIND)
    assert exc.value.code == RejectCode.UNSAFE
    assert "would expand to more than 256 MB" in exc.value.message


@pytest.mark.parametrize("name", ["northwind.xlsx", "northwind.xls"])
def test_truncated_workbook_is_corrupt(name: str) -> None:
    data = (DATA / name).read_bytes()
    with pytest.raises(FileRejected) as exc:
        read_bytes(name, data[: len(data) // 2], NORTHWIND)
    assert exc.value.code == RejectCode.CORRUPT


def test_encrypted_workbook() -> None:
    # Excel saves a password-protected XLSX as an OLE container holding an "EncryptedPackage" stream.
    fake = OLE_MAGIC + b"\x00" * 504 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 512
    with pytest.raises(FileRejected) as exc:
        read_bytes("secret.xlsx", fake, NORTHWIND)
    assert exc.value.code == RejectCode.ENCRYPTED
    assert "password" in exc.value.message


def test_garbage_named_xlsx_is_corrupt() -> None:
    with pytest.raises(FileRejected) as exc:
        read_bytes("x.xlsx", b"PK\x03\x04" + b"\x00" * 100, NORTHWIND)
    assert exc.value.code == RejectCode.CORRUPT


def test_a_workbook_that_makes_calamine_abort_is_rejected_and_the_process_goes_on() -> None:
    """A damaged XLS (found by fuzzing) declares a sheet of absurd size: calamine asks for 100 GB and
    aborts. Read in the import's own process it killed the process; its worker process dies instead."""
    data = (DATA / "aborts-calamine.xls").read_bytes()
    with pytest.raises(FileRejected) as rejected:
        parse_file("damaged.xls", data, NORTHWIND, max_bytes=10**8, warn_bytes=10**7)
    assert rejected.value.code == RejectCode.CORRUPT and rejected.value.file == "damaged.xls"
    assert "damaged or not a real XLS file" in rejected.value.message
    name = "northwind.xlsx"  # the next workbook is read by a new worker
    assert len(parse_file(name, (DATA / name).read_bytes(), NORTHWIND, max_bytes=10**8, warn_bytes=10**7).rows) == 3
