"""Alerts to ops as Prefect events: a rejected file, a file with many rejected rows, a failed client run.

The events are built by plain functions (tested without Prefect) and emitted from the flows
(`emit`). Each has the client as a related resource and a one-line `message` in its payload, and
carries no email address: file names and reasons can quote one (a data row taken for the header),
so every text is `redact`ed. `make deploy` creates the automations that post them to the webhook
in SFTP_IMPORT_ALERT_WEBHOOK_URL (deployments/setup.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the setup reads the event names without importing the import's stack
    from tasks.importer import FileImport
    from tasks.sync import ClientSyncResult

FILE_REJECTED = "sftp-import.file.rejected"
ROWS_REJECTED = "sftp-import.file.rows-rejected"
RUN_FAILED = "sftp-import.run.failed"
EMAIL = re.compile(r"[^\s@'\"<>()\[\],;:/\\]+@[^\s@'\"<>()\[\],;:/\\]+")


def redact(text: str) -> str:
    """The text with every email address (anything around an @) replaced by `[email]`."""
    return EMAIL.sub("[email]", text)


@dataclass(frozen=True)
class Alert:
    """One event: its name, the client, what it concerns (a file or a run) and its payload."""

    event: str
    client: str
    subject_id: str  # the event's resource: `sftp-import.file.<client>.<file>` or `sftp-import.run.<kind>.<client>`
    subject_name: str
    payload: dict[str, Any]

    def resource(self) -> dict[str, str]:
        return {"prefect.resource.id": self.subject_id, "prefect.resource.name": self.subject_name}

    def related(self) -> list[dict[str, str]]:
        """The client, as a related resource (ops filter and match on it)."""
        return [
            {
                "prefect.resource.id": f"sftp-import.client.{self.client}",
                "prefect.resource.role": "client",
                "prefect.resource.name": self.client,
            }
        ]


def _file_alert(event: str, client: str, file: str, message: str, **details: Any) -> Alert:
    shown = redact(file)
    payload = {"client": client, "file": shown, "message": redact(f"{client}: {shown}: {message}"), **details}
    return Alert(event, client, f"sftp-import.file.{client}.{shown}", shown, payload)


def file_rejected(client: str, file: str, reason: str, stage: str) -> Alert:
    """A file rejected whole, at arrival (`sync`: its name) or at import (`import`: its content)."""
    return _file_alert(
        FILE_REJECTED, client, file, f"rejected at {stage}: {reason}", reason=redact(reason), stage=stage
    )


def rows_rejected(client: str, file: str, stats: dict[str, int], share: float) -> Alert | None:
    """An imported file whose rejected rows are more than `share` of its rows; None when within it."""
    read, rejected = stats.get("rows_read", 0), stats.get("rows_rejected", 0)
    if read == 0 or rejected / read <= share:
        return None
    message = f"{rejected:,} of {read:,} rows rejected ({rejected / read:.0%}, alert above {share:.0%})"
    return _file_alert(ROWS_REJECTED, client, file, message, rows_read=read, rows_rejected=rejected, share=share)


def run_failed(client: str, kind: str, error: str) -> Alert:
    """A client's run (`import`, `sync`, …) that failed: its files wait for the next run."""
    payload = {
        "client": client,
        "kind": kind,
        "error": redact(error),
        "message": redact(f"{client}: {kind} failed: {error}"),
    }
    return Alert(RUN_FAILED, client, f"sftp-import.run.{kind}.{client}", f"{kind} of {client}", payload)


def import_alerts(outcome: FileImport, share: float) -> list[Alert]:
    """The alerts of one committed file: rejected, or imported with too many rejected rows."""
    if outcome.status == "rejected":
        return [file_rejected(outcome.client, outcome.name, outcome.reason or "", "import")]
    alert = rows_rejected(outcome.client, outcome.name, outcome.stats, share) if outcome.status == "imported" else None
    return [alert] if alert else []


def sync_alerts(result: ClientSyncResult) -> list[Alert]:
    """The alerts of one client's sync: the files rejected at arrival (recorded once, so alerted once)."""
    return [
        file_rejected(result.client, f.name, f.reason or "", "sync") for f in result.files if f.outcome == "rejected"
    ]


def emit(alerts: Iterable[Alert]) -> None:
    """Send the alerts as Prefect events (from inside a flow or task run: the run is related too)."""
    from prefect.events import emit_event

    for alert in alerts:
        emit_event(event=alert.event, resource=alert.resource(), related=alert.related(), payload=alert.payload)
