"""Alerts to ops: the events' contents (plain functions), and the flows emitting them once per file or run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tasks import alerts
from tasks.importer import FileImport
from tasks.settings import load_settings
from tasks.sync import ClientSyncResult, ListedFile
from tests.importing import stage_bytes
from tests.sftp_fixtures import SftpTarget
from tests.test_sync import put

HEADER = b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
ROW = b"%s@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\n"
NO_HEADER = ROW % b"ada"  # a data row where the header should be: the rejection quotes it


def no_email(event: Any) -> bool:
    return alerts.EMAIL.search(json.dumps(event, default=str)) is None


def test_redact_hides_every_email_address() -> None:
    text = "column 1 is 'ada@example.com' but <bob.smith+crm@mail.example.co.uk>; file eve@x.io.csv"
    assert alerts.redact(text) == "column 1 is '[email]' but <[email]>; file [email]"
    assert alerts.redact("no address here: a @ b, user@") == "no address here: a @ b, user@"


def test_a_rejected_file_names_client_and_file_and_no_email() -> None:
    reason = "The header does not match the contract: column 1 is 'ada@example.com' but the contract expects 'Email'."
    outcome = FileImport("northwind", "contacts.csv.gz", "rejected", reason=reason)
    (alert,) = alerts.import_alerts(outcome, share=0.1)
    assert alert.event == alerts.FILE_REJECTED
    assert alert.resource() == {
        "prefect.resource.id": "sftp-import.file.northwind.contacts.csv.gz",
        "prefect.resource.name": "contacts.csv.gz",
    }
    assert alert.related() == [
        {
            "prefect.resource.id": "sftp-import.client.northwind",
            "prefect.resource.role": "client",
            "prefect.resource.name": "northwind",
        }
    ]
    assert alert.payload["client"] == "northwind" and alert.payload["file"] == "contacts.csv.gz"
    assert alert.payload["message"].startswith("northwind: contacts.csv.gz: rejected at import: The header does not")
    assert "'[email]'" in alert.payload["reason"] and no_email(alert.payload)


@pytest.mark.parametrize(("rejected", "share", "alerted"), [(2, 0.1, True), (1, 0.1, False), (0, 0.0, False)])
def test_rejected_rows_alert_above_the_share(rejected: int, share: float, alerted: bool) -> None:
    stats = {"rows_read": 10, "rows_imported": 10 - rejected, "rows_rejected": rejected}
    found = alerts.import_alerts(FileImport("acme", "a.csv", "imported", stats=stats), share)
    assert [a.event for a in found] == ([alerts.ROWS_REJECTED] if alerted else [])
    if alerted:
        assert found[0].payload["message"] == "acme: a.csv: 2 of 10 rows rejected (20%, alert above 10%)"
    assert alerts.import_alerts(FileImport("acme", "a.csv", "skipped", stats=stats), 0.0) == []


def test_a_failed_run_and_a_file_rejected_at_arrival() -> None:
    failed = alerts.run_failed("fabrikam", "sync", "FileNotFoundError: /fabrikam (owner: ops@example.com)")
    assert (
        failed.event == alerts.RUN_FAILED
        and failed.resource()["prefect.resource.id"] == "sftp-import.run.sync.fabrikam"
    )
    assert failed.payload["message"] == "fabrikam: sync failed: FileNotFoundError: /fabrikam (owner: [email])"
    result = ClientSyncResult("contoso", datetime.now(UTC))
    result.files += [
        ListedFile("notes.txt", "rejected", "the extension .txt is not accepted"),
        ListedFile("a.csv", "staged"),
    ]
    (alert,) = alerts.sync_alerts(result)
    assert alert.payload["stage"] == "sync" and alert.payload["file"] == "notes.txt"


# --- emitted by the flows (Prefect test harness; the events caught by Prefect's asserting client) ---


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Reads the platform's events emitted so far (as JSON-ready dicts), caught by Prefect's asserting client."""
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    AssertingEventsClient.reset()
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)

    def read() -> list[dict[str, Any]]:
        worker.drain()
        events = [event for client in AssertingEventsClient.all for event in client.events]
        return [e.model_dump(mode="json") for e in events if e.event.startswith("sftp-import.")]

    yield read
    worker.drain()


@pytest.mark.usefixtures("prefect_harness")
def test_the_import_alerts_each_file_once(home: Path, emitted: Callable[[], list[dict[str, Any]]]) -> None:
    from flows.daily_import import daily_import

    settings = load_settings()
    now = datetime.now(UTC)
    stage_bytes(settings, "northwind", "no-header.csv", NO_HEADER + ROW % b"bob", now - timedelta(hours=2))
    many_bad = HEADER + ROW % b"cy" + b"not-an-email,Di,,,,,\n" * 2
    stage_bytes(settings, "northwind", "many-bad.csv", many_bad, now - timedelta(hours=1))
    stage_bytes(settings, "northwind", "good.csv", HEADER + ROW % b"eve", now - timedelta(minutes=30))
    daily_import(client="northwind", now=True)
    daily_import(client="northwind", now=True)  # nothing left to import: nothing alerted again
    found = emitted()
    assert [(e["event"], e["payload"]["file"]) for e in found] == [
        (alerts.FILE_REJECTED, "no-header.csv"),
        (alerts.ROWS_REJECTED, "many-bad.csv"),
    ]
    for event in found:
        roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in event["related"]}
        assert roles["client"] == "sftp-import.client.northwind" and "flow-run" in roles  # the run it came from
        assert no_email(event)


@pytest.mark.usefixtures("prefect_harness")
def test_the_sync_alerts_files_rejected_at_arrival_and_failed_clients(
    asyncssh_target: SftpTarget, emitted: Callable[[], list[dict[str, Any]]]
) -> None:
    from prefect.states import State

    from flows.hourly_sync import hourly_sync

    put(asyncssh_target.client_dir("contoso"), "notes.txt", b"hello")
    put(asyncssh_target.client_dir("contoso"), "contacts.csv.gz.gpg", b"staged: read at import")
    put(asyncssh_target.client_dir("northwind"), "export.xml", b"<contacts/>")  # fabrikam has no folder: fails
    state: State[Any] = hourly_sync(return_state=True)  # type: ignore[call-overload]
    assert state.is_failed()
    hourly_sync(client="contoso")  # notes.txt is known now: not alerted again
    found = emitted()
    assert [(e["event"], e["payload"]["client"], e["payload"].get("file")) for e in found] == [
        (alerts.FILE_REJECTED, "contoso", "notes.txt"),
        (alerts.RUN_FAILED, "fabrikam", None),
    ]
    assert "FileNotFoundError" in found[1]["payload"]["error"]


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_import_alerts_once(home: Path, emitted: Callable[[], list[dict[str, Any]]]) -> None:
    from prefect.states import State

    from flows.daily_import import daily_import

    stage_bytes(load_settings(), "northwind", "secret.csv.gpg", b"encrypted, but the platform has no key")
    state: State[Any] = daily_import(client="northwind", now=True, return_state=True)  # type: ignore[call-overload]
    assert state.is_failed()
    (found,) = emitted()
    assert found["event"] == alerts.RUN_FAILED and found["payload"]["client"] == "northwind"
    assert found["payload"]["kind"] == "daily" and "PGP" in found["payload"]["error"]
