"""The upload screen: table and summary built as plain data, then read back through the Prefect API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.contract import load_contracts
from tasks.report import artifact_key, summary_markdown, upload_rows
from tasks.settings import load_settings
from tests.conftest import EXAMPLE_CLIENTS
from tests.importing import stage_bytes

NORTHWIND = load_contracts(EXAMPLE_CLIENTS)["northwind"]
CUTOFF = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)  # 06:00 Europe/Amsterdam
HEADER = "Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
EMAILS = ("ann.secret@example.com", "bob.hidden@example.com", "cy.private@example.com")


def test_artifact_keys_are_sanitised() -> None:
    assert artifact_key("uploads", "north_wind") == "uploads-north-wind"
    assert artifact_key("summary", "ACME--7") == "summary-acme-7"


def test_rows_are_json_native_and_capped() -> None:
    files = [
        {"name": f"f{i}.csv", "status": "imported", "received_at": CUTOFF, "rows_read": 3, "reason": None}
        for i in range(150)
    ]
    rows = upload_rows(files)
    assert len(rows) == 100
    assert rows[0] == {
        "name": "f0.csv",
        "code": None,
        "received": "2026-11-28 05:00 UTC",
        "status": "imported",
        "rows_read": 3,
        "rows_imported": None,
        "rows_rejected": None,
        "duplicates_removed": None,
        "emails_merged": None,
        "reason": "",
    }
    json.dumps(rows)


def test_summary_lists_errors_and_where_to_find_them_all() -> None:
    errors = [{"line": n, "field": "Segment", "message": "not one of SMB"} for n in range(2, 9)]
    client = {
        "next_import_at": CUTOFF,
        "files": [
            {"name": "a.csv", "status": "imported", "rows_read": 9, "rows_rejected": 7, "errors": errors},
            {"name": "b.txt", "status": "rejected", "reason": "the extension .txt is not accepted"},
        ],
    }
    client["files"][0]["errors_total"] = 7
    text = summary_markdown(NORTHWIND, client)
    assert "Next import: **2026-11-28 06:00 CET** (Europe/Amsterdam)" in text
    assert "- **a.csv**: 7 of 9 rows rejected" in text
    assert "  - line 2, Segment: not one of SMB" in text and "… 7 errors in all" in text
    assert "line 7," not in text  # at most MAX_ERRORS_PER_FILE lines
    assert "`sftp-import errors --client northwind --file 'a.csv'`" in text
    assert "- **b.txt**: rejected: the extension .txt is not accepted" in text


def _artifact(key: str) -> Any:
    from prefect.artifacts import Artifact

    found = Artifact.get(key)
    assert found is not None, f"no artifact {key}"
    return found


@pytest.mark.usefixtures("prefect_harness")
def test_import_publishes_table_summary_and_progress(home: Path) -> None:
    from flows.daily_import import daily_import

    settings = load_settings()
    good = HEADER + f"{EMAILS[0]},Ann,Lee,007,01/02/2026,1.50,SMB\n{EMAILS[1]},Bob,Ray,008,02/02/2026,2,Gold\n"
    stage_bytes(settings, "northwind", "contacts.csv", good.encode(), CUTOFF - timedelta(hours=2))
    wrong = f"Mail,Name\n{EMAILS[2]},Cy\n"
    stage_bytes(settings, "northwind", "wrong-header.csv", wrong.encode(), CUTOFF - timedelta(hours=1))

    before = datetime.now(UTC)  # the summary's next import is the one after the wall-clock time of the run
    state = daily_import(client="northwind", scheduled_for=CUTOFF + timedelta(minutes=1), return_state=True)
    after = datetime.now(UTC)
    assert state.is_completed(), state.message

    table = _artifact("uploads-northwind")
    assert table.type == "table"
    rows = {row["name"]: row for row in json.loads(table.data)}
    assert rows["contacts.csv"]["status"] == "imported"
    assert (rows["contacts.csv"]["rows_read"], rows["contacts.csv"]["rows_imported"]) == (2, 1)
    assert rows["contacts.csv"]["rows_rejected"] == 1
    assert rows["wrong-header.csv"]["status"] == "rejected" and rows["wrong-header.csv"]["reason"]
    assert rows["wrong-header.csv"]["code"] == "header" and rows["contacts.csv"]["code"] is None

    summary = _artifact("summary-northwind")
    assert summary.type == "markdown"
    next_imports = {
        f"Next import: **{NORTHWIND.next_cutoff(m).astimezone(NORTHWIND.zone):%Y-%m-%d %H:%M %Z}**"
        for m in (before, after)
    }
    assert any(text in summary.data for text in next_imports), summary.data
    assert "- **contacts.csv**: 1 of 2 rows rejected" in summary.data
    assert "line 3, Segment" in summary.data
    assert "sftp-import errors --client northwind --file 'contacts.csv'" in summary.data
    assert "- **wrong-header.csv**: rejected: " in summary.data

    progress = _artifact("import-progress-northwind")
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert "2 of 2 file(s) imported" in progress.description

    for text in (table.data, summary.data):
        for email in EMAILS:
            assert email not in text and email.split("@")[0] not in text
