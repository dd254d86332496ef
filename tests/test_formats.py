"""The format registry: detection by content and extension, lazy imports, and a format added as a plug-in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main
from schemas.contract import Contract, load_contracts
from schemas.samples import sample_records, write_rows, write_sample
from tasks import formats, sync
from tasks.errors import FileRejected, RejectCode
from tasks.formats import FORMATS, detect_format, read_bytes
from tasks.validate import parse_file
from tests import jsonl_format
from tests.importing import typed_records

CONTRACTS = load_contracts(Path(__file__).parents[1] / "examples" / "clients")
CONTOSO: Contract = CONTRACTS["contoso"]
DATA = Path(__file__).parent / "data"
CONTENT = {
    "csv": b"a,b\n1,2\n",
    "xml": b"<contacts/>",
    "xlsx": (DATA / "northwind.xlsx").read_bytes(),
    "xls": (DATA / "northwind.xls").read_bytes(),
}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("c.csv", "csv", "csv"),
        ("c.xml", "xml", "xml"),
        ("c.xlsx", "xlsx", "xlsx"),
        ("c.XLS", "xls", "xls"),
        ("c.xls", "xlsx", "xlsx"),  # an XLSX saved under the legacy name
        ("c.xlsx", "xls", "xls"),  # a legacy workbook under the new name
        ("c.xls", "csv", "csv"),  # a text export under an Excel name
        ("c.csv", "xlsx", "xlsx"),
    ],
)
def test_the_content_decides_where_it_has_a_signature(name: str, content: str, expected: str) -> None:
    assert detect_format(name, CONTENT[content]).name == expected


def test_a_misnamed_file_is_read_as_its_content_with_a_warning() -> None:
    table = read_bytes("export.xls", write_sample(CONTOSO, "csv"), CONTOSO)
    assert table.format == "csv"
    assert table.warnings == ["The file is named .xls but its content is CSV; it was read as CSV."]


def test_rejections_list_the_registry_extensions() -> None:
    with pytest.raises(FileRejected) as exc:
        detect_format("notes.txt", b"x")
    assert exc.value.code == RejectCode.EXTENSION
    assert exc.value.message.startswith("'.txt' files are not accepted: send .csv, .xls, .xlsx or .xml, each also")
    assert "accepted: .csv, .xls, .xlsx, .xml (upper or lower case)" in sync.rejected_extension_reason("notes.txt")


def test_nothing_writes_xls() -> None:
    assert "xls" not in formats.writable()
    with pytest.raises(ValueError, match="XLS files cannot be written"):
        write_rows(CONTOSO, sample_records(CONTOSO), "xls")


# a file parsed in a fresh interpreter: which of the formats' libraries got imported
PROBE = """
import sys
from pathlib import Path
from schemas.contract import load_contracts
from tasks.validate import parse_file
path = Path(sys.argv[1])
contract = load_contracts(Path("examples/clients"))[sys.argv[2]]
parse_file(path.name, path.read_bytes(), contract, max_bytes=10**8, warn_bytes=10**7)
print(" ".join(sorted(n for n in ("openpyxl", "python_calamine", "xmltodict") if n in sys.modules)))
"""


@pytest.mark.parametrize(
    ("fmt", "imported"),
    [("csv", ""), ("xml", "xmltodict"), ("xlsx", ""), ("xls", "")],
)
def test_a_format_imports_only_its_own_library(fmt: str, imported: str, tmp_path: Path) -> None:
    """Readers are imported on first use: openpyxl (a writer only) is not needed to read a CSV; calamine
    is never loaded into the importing process (it runs in its worker process, `sheet_process.py`)."""
    path = tmp_path / f"c.{fmt}"
    if fmt == "xls":
        path.write_bytes((DATA / "northwind.xls").read_bytes())
    else:
        path.write_bytes(write_sample(CONTRACTS["northwind"], fmt))
    root = Path(__file__).parents[1]
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), "northwind"], cwd=root, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == imported


@pytest.fixture
def with_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry with the test plug-in's line added."""
    monkeypatch.setattr(formats, "FORMATS", (*FORMATS, jsonl_format.FORMAT))


@pytest.mark.usefixtures("with_jsonl")
@pytest.mark.parametrize("client", sorted(CONTRACTS))
def test_a_plugged_in_format_is_read_validated_and_written(client: str) -> None:
    contract = CONTRACTS[client]
    parsed = parse_file("c.jsonl", write_sample(contract, "jsonl"), contract, max_bytes=10**8, warn_bytes=10**7)
    assert parsed.format == "jsonl" and parsed.errors == []
    assert typed_records(parsed, contract) == sample_records(contract)


@pytest.mark.usefixtures("with_jsonl")
def test_a_plugged_in_format_names_fields_by_their_xml_names_in_errors() -> None:
    data = b'{"Email": "not an email", "Name": "Bo"}\n\n{"Email": "ann@example.com", "Name": "Ann"}\n'
    parsed = parse_file("c.jsonl", data, CONTOSO, max_bytes=10**8, warn_bytes=10**7)
    assert [(e.line, e.field, e.message) for e in parsed.errors] == [(1, "Email", "Not a valid email address.")]
    assert parsed.rows["Email"].tolist() == ["ann@example.com"] and parsed.rows["_line"].tolist() == [3]


@pytest.mark.usefixtures("with_jsonl")
def test_a_plugged_in_format_is_accepted_by_the_sync_and_offered_by_the_cli(home: Path, tmp_path: Path) -> None:
    assert formats.accepts("contacts.JSONL")
    assert ".xml, .jsonl (upper" in sync.rejected_extension_reason("notes.txt")
    target = tmp_path / "sample.jsonl"
    assert main(["sample", "--client", "contoso", "--format", "jsonl", "-o", str(target)]) == 0
    assert target.read_bytes() == write_sample(CONTOSO, "jsonl")


@pytest.mark.usefixtures("with_jsonl")
def test_a_plugged_in_format_rejects_what_it_cannot_read() -> None:
    with pytest.raises(FileRejected) as exc:
        parse_file("c.jsonl", b'{"Email": "a@b.io"}\n{"Email": \n', CONTOSO, max_bytes=10**8, warn_bytes=10**7)
    assert exc.value.code == RejectCode.CORRUPT
