"""`sftp-import export` (CSV/JSON, the contract's field names as keys), `errors` (formula-looking cells
neutralised in CSV), `status --json` carrying each file's errors; none of them imports Prefect."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from flows.cli import main
from tasks import store
from tasks.export import neutralise, write_errors_csv
from tasks.settings import load_settings
from tests.conftest import REPO
from tests.importing import CLIENTS, import_file, stage_bytes, stage_records

NORTHWIND = CLIENTS["northwind"]
CONTOSO = CLIENTS["contoso"]
BAD = (
    b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
    b"a@x.com,Ann,,007,01/02/2026,12.50,SMB\n"
    b"b@x.com,=cmd|' /C calc'!A0,,,,+1,Enterprise\n"
    b"c@x.com,,,,-1/2/2026,-2x,=HYPERLINK()\n"
    b"@d,,,,,,SMB\n"
)


@pytest.fixture
def imported(home: Path) -> None:
    settings = load_settings()
    stage_bytes(settings, "northwind", "bad.csv", BAD)
    import_file(settings, NORTHWIND, "bad.csv", "r1")
    record = {
        "Email": "z@x.com",
        "Name": "Zed",
        "LoyaltyPoints": 7,
        "OptedIn": True,
        "LastVisit": datetime(2026, 1, 2, 3, 4, 5),
    }
    stage_records(settings, CONTOSO, "c.xml", [record])
    import_file(settings, CONTOSO, "c.xml", "r1")


@pytest.mark.usefixtures("imported")
def test_export_json_and_csv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["export", "--client", "northwind", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "Email": "a@x.com",
            "First Name": "Ann",
            "Last Name": None,
            "Account ID": "007",
            "Purchase Date": "2026-02-01",
            "Amount": "12.5",
            "Segment": "SMB",
        },
        {
            "Email": "b@x.com",
            "First Name": "=cmd|' /C calc'!A0",
            "Last Name": None,
            "Account ID": None,
            "Purchase Date": None,
            "Amount": "1",
            "Segment": "Enterprise",
        },
    ]
    out = tmp_path / "contoso.csv"
    assert main(["export", "--client", "contoso", "--format", "csv", "-o", str(out)]) == 0
    assert out.read_text() == "email;name;loyalty_points;opted_in;last_visit\nz@x.com;Zed;7;true;2026-01-02T03:04:05\n"
    assert "1 contacts of contoso" in capsys.readouterr().err


@pytest.mark.usefixtures("imported")
def test_errors_csv_neutralises_formulas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "--client", "northwind", "--file", "bad.csv", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["line", "field", "message"]
    assert [r[:2] for r in rows[1:]] == [["4", "Amount"], ["4", "Purchase Date"], ["4", "Segment"], ["5", "Email"]]
    assert "@d" not in "".join(r[2] for r in rows)  # an email is never quoted back
    assert main(["errors", "--client", "northwind", "--file", "bad.csv"]) == 0
    assert capsys.readouterr().out.startswith("line 4, Amount:")
    with pytest.raises(SystemExit, match="no file"):
        main(["errors", "--client", "northwind", "--file", "other.csv"])


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("=1+1", "'=1+1"), ("+31 6", "'+31 6"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=x", "'\t=x"), ("ok", "ok")],
)
def test_neutralise(cell: str, shown: str) -> None:
    assert neutralise(cell) == shown
    out = io.StringIO()
    write_errors_csv([{"line": 2, "field": cell, "message": cell}], out)
    assert list(csv.reader(io.StringIO(out.getvalue())))[1] == ["2", shown, shown]


@pytest.mark.usefixtures("imported")
def test_status_json_carries_statistics_and_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flows.cli", "status", "--json", "--client", "northwind"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "prefect" not in {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    (file,) = json.loads(done.stdout)["clients"][0]["files"]
    assert {k: file[k] for k in (*store.IMPORT_STATS, "errors_total")} == {
        "rows_read": 4,
        "rows_imported": 2,
        "rows_rejected": 2,
        "duplicates_removed": 0,
        "emails_merged": 0,
        "new_contacts": 2,
        "updated_contacts": 0,
        "errors_total": 4,
    }
    assert [e["line"] for e in file["errors"]] == [4, 4, 4, 5] and file["imported_at"]


def test_export_before_any_import(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--client", "fabrikam", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
