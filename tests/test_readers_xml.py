"""XML reader: structure, record line numbers, names as found, DTDs and entities refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.contract import Contract, load_contracts
from tasks.errors import FileRejected, RejectCode
from tasks.formats import read_bytes

NORTHWIND: Contract = load_contracts(Path(__file__).parents[1] / "examples" / "clients")["northwind"]


def test_records_lines_and_text_kept() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<contacts>
  <contact>
    <email>a@x.io</email><first_name> Ann </first_name><account_id>007</account_id>
  </contact>
  <contact><email>b@x.io</email><last_name>O&apos;Brien &amp; Co&#13;</last_name><first_name/></contact>
</contacts>
"""
    table = read_bytes("c.xml", xml, NORTHWIND)
    assert table.header == ["email", "first_name", "account_id", "last_name"]
    assert table.rows == [["a@x.io", " Ann ", "007", ""], ["b@x.io", "", "", "O'Brien & Co\r"]]
    assert table.lines == [3, 6]
    assert table.encoding == "utf-8"


def test_repeated_or_nested_field_is_a_row_error() -> None:
    xml = (
        b"<contacts>\n<contact><email>a@x.io</email><email>b@x.io</email></contact>\n"
        b"<contact><email><b>x</b></email></contact>\n"
        b"<contact><email>c@x.io</email> text between <segment>SMB</segment></contact>\n"
        b"<contact><segment/><segment>SMB</segment><segment><b>x</b></segment></contact>\n<contact/>\n</contacts>"
    )
    table = read_bytes("c.xml", xml, NORTHWIND)
    assert [(e.line, e.field, e.message) for e in table.row_errors] == [
        (2, "email", "<email> appears 2 times in one contact."),
        (3, "email", "<email> holds elements; it must hold text only."),
        (5, "segment", "<segment> appears 3 times in one contact."),
    ]
    assert (table.header, table.rows, table.lines) == (["email", "segment"], [["c@x.io", "SMB"], ["", ""]], [4, 6])


@pytest.mark.parametrize(
    ("xml", "code", "words"),
    [
        (b"<Contacts/>", RejectCode.XML_NAMES, "The root element is <Contacts>; it must be <contacts>."),
        (b"<contacts><person/></contacts>", RejectCode.XML_NAMES, "only <contact> elements are allowed"),
        (b"<contacts><contact>", RejectCode.CORRUPT, "The XML is not well-formed"),
        (b"<contacts><contact><email>&x;</email></contact></contacts>", RejectCode.CORRUPT, "undefined entity"),
        (b'<!DOCTYPE contacts [<!ENTITY x "y">]><contacts/>', RejectCode.UNSAFE, "DOCTYPE"),
    ],
)
def test_rejections(xml: bytes, code: RejectCode, words: str) -> None:
    with pytest.raises(FileRejected) as exc:
        read_bytes("c.xml", xml, NORTHWIND)
    assert exc.value.code == code
    assert words in exc.value.message


def test_utf16_xml() -> None:
    xml = '<?xml version="1.0" encoding="UTF-16"?><contacts><contact><email>zoë@x.io</email></contact></contacts>'
    table = read_bytes("c.xml", xml.encode("utf-16"), NORTHWIND)
    assert table.rows == [["zoë@x.io"]]
    assert table.encoding == "utf-16"
