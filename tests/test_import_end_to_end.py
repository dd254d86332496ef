"""End to end: a real SFTP server → hourly sync → daily import → export, for a contract with every
field type, in every format (CSV UTF-8 and Windows-1252, XLSX, XML, and a legacy XLS)."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.contract import load_contracts
from schemas.samples import write_rows
from tests.conftest import EXAMPLE_CLIENTS
from tests.importing import ledger
from tests.sftp_fixtures import SftpTarget

ALL_KINDS = """\
id: allkinds
name: All Kinds
timezone: Asia/Kolkata
import_time: "05:30"
csv: {delimiter: ";"}
fields:
  - {name: Email, xml: Email, type: email, required: true}
  - {name: Name, xml: Name, type: string}
  - {name: Code, xml: Code, type: string}
  - {name: Visits, xml: Visits, type: integer}
  - {name: Balance, xml: Balance, type: decimal}
  - {name: Born, xml: Born, type: date, format: "%d.%m.%Y"}
  - {name: Seen, xml: Seen, type: datetime}
  - {name: Active, xml: Active, type: boolean}
  - {name: Tier, xml: Tier, type: enum, values: [Gold, Silver]}
"""
KEYS = ("Email", "Name", "Code", "Visits", "Balance", "Born", "Seen", "Active", "Tier")


def contact(*values: Any) -> dict[str, Any]:
    return dict(zip(KEYS, values, strict=True))


ANN = contact(
    "ann@x.com", "Ann", "007", 1, Decimal("-12.50"), date(1990, 2, 3), datetime(2026, 1, 2, 3, 4, 5), True, "Gold"
)
DAYS = [
    {
        "first.csv": [ANN, contact("bob@x.com", "Bob", None, None, None, None, None, False, None), ANN],
    },
    {
        "second.xlsx": [
            contact(" ANN@x.com", None, None, 5, None, None, None, None, None),
            contact("cy@x.com", "Cy", "0042", 0, Decimal("0.0000000001"), date(2001, 12, 31), None, None, "Silver"),
        ],
        "third.xml": [
            contact("cy@x.com", None, None, None, None, None, datetime(2026, 3, 29, 2, 30), True, None),
            contact("dee@x.com", "Dee & <Co>", None, None, None, None, None, None, None),
        ],
        "windows.csv": [
            contact("zoe@x.com", "Zoë Ørsted", None, -3, Decimal("99999999999999.99"), None, None, None, None)
        ],
    },
]
EXPECTED = [
    {
        "Email": "ANN@x.com",
        "Name": "Ann",
        "Code": "007",
        "Visits": 5,
        "Balance": "-12.5",
        "Born": "1990-02-03",
        "Seen": "2026-01-02T03:04:05",
        "Active": True,
        "Tier": "Gold",
    },
    {
        "Email": "bob@x.com",
        "Name": "Bob",
        "Code": None,
        "Visits": None,
        "Balance": None,
        "Born": None,
        "Seen": None,
        "Active": False,
        "Tier": None,
    },
    {
        "Email": "cy@x.com",
        "Name": "Cy",
        "Code": "0042",
        "Visits": 0,
        "Balance": "0.0000000001",
        "Born": "2001-12-31",
        "Seen": "2026-03-29T02:30:00",
        "Active": True,
        "Tier": "Silver",
    },
    {
        "Email": "dee@x.com",
        "Name": "Dee & <Co>",
        "Code": None,
        "Visits": None,
        "Balance": None,
        "Born": None,
        "Seen": None,
        "Active": None,
        "Tier": None,
    },
    {
        "Email": "zoe@x.com",
        "Name": "Zoë Ørsted",
        "Code": None,
        "Visits": -3,
        "Balance": "99999999999999.99",
        "Born": None,
        "Seen": None,
        "Active": None,
        "Tier": None,
    },
]


def put(folder: Path, name: str, data: bytes) -> None:
    path = folder / name
    path.write_bytes(data)
    stamp = time.time() - 3600
    os.utime(path, (stamp, stamp))


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_sftp_sync_import_export(
    asyncssh_target: SftpTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main
    from flows.daily_import import daily_import
    from flows.hourly_sync import hourly_sync

    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "allkinds.yaml").write_text(ALL_KINDS)
    shutil.copy(EXAMPLE_CLIENTS / "northwind.yaml", clients)
    monkeypatch.setenv("SFTP_IMPORT_CLIENTS_DIR", str(clients))
    contract = load_contracts(clients)["allkinds"]
    folder = asyncssh_target.client_dir("allkinds")
    put(
        asyncssh_target.client_dir("northwind"),
        "legacy.xls",
        (Path(__file__).parent / "data" / "northwind.xls").read_bytes(),
    )

    for day in DAYS:  # one sync per day: received order = the order of the days
        for name, records in day.items():
            fmt: Any = name.rsplit(".", 1)[1]
            put(folder, name, write_rows(contract, records, fmt, encoding="cp1252" if "windows" in name else "utf-8"))
        assert not hourly_sync()["failed"]

    summary = daily_import(client="allkinds", now=True)
    assert [f["status"] for f in summary["files"]] == ["imported"] * 4
    files = ledger(asyncssh_target.settings, "allkinds")
    assert {n: (f["format"], f["encoding"]) for n, f in files.items()} == {
        "first.csv": ("csv", "utf-8"),
        "second.xlsx": ("xlsx", None),
        "third.xml": ("xml", "utf-8"),
        "windows.csv": ("csv", "cp1252"),
    }
    assert (files["first.csv"]["duplicates_removed"], files["first.csv"]["new_contacts"]) == (1, 2)
    assert (files["second.xlsx"]["new_contacts"], files["second.xlsx"]["updated_contacts"]) == (1, 1)
    assert (files["third.xml"]["new_contacts"], files["third.xml"]["updated_contacts"]) == (1, 1)

    assert main(["export", "--client", "allkinds", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == EXPECTED

    northwind = daily_import(client="northwind", now=True)
    assert northwind["files"][0]["stats"]["rows_imported"] == 3 and northwind["files"][0]["format"] == "xls"
    assert main(["export", "--client", "northwind", "--format", "csv"]) == 0
    exported = capsys.readouterr().out.splitlines()
    assert exported[0] == "Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment" and len(exported) == 4
