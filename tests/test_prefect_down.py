"""The Prefect API down when a run starts: the command fails at once with a message naming the API and
what to do, nothing is run, and the next run, with the API back, imports each file once."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.server import free_port
from flows.cli import main
from tasks.settings import load_settings
from tests.importing import CLIENTS, contacts, ledger, stage_bytes

CSV = (
    b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\r\n"
    b"ada@example.com,Ada,Lovelace,001,01/01/2026,10.5,SMB\r\n"
    b"bo@example.com,Bo,Berg,002,02/01/2026,20,Enterprise\r\n"
)
IMPORT = ["import", "--client", "northwind", "--now"]


@pytest.mark.slow
def test_a_run_with_the_api_down_fails_clearly_and_the_next_imports_each_file_once(
    prefect_harness: None, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    stage_bytes(settings, "northwind", "contacts.csv", CSV)
    down = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there: a server that is down
    monkeypatch.setenv("PREFECT_API_URL", down)
    for command in (IMPORT, ["sync", "--client", "northwind"]):
        with pytest.raises(SystemExit) as exited:
            main(command)
        message = str(exited.value.code)
        assert f"the Prefect API at {down} (PREFECT_API_URL) does not answer, so nothing was run" in message
        assert "unset PREFECT_API_URL" in message and "sftp-import server start" in message
    assert ledger(settings, "northwind")["contacts.csv"]["status"] == "staged"  # not lost: it waits
    assert contacts(settings, CLIENTS["northwind"]) == []

    monkeypatch.delenv("PREFECT_API_URL")  # the API is back (the test harness's)
    assert main(IMPORT) == 0
    assert main(IMPORT) == 0  # a second run finds nothing left to import
    row = ledger(settings, "northwind")["contacts.csv"]
    assert (row["status"], row["rows_imported"], row["new_contacts"]) == ("imported", 2, 2)
    assert len(contacts(settings, CLIENTS["northwind"])) == 2
