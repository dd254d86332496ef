"""The upload screen in the Prefect UI: per client a table of its files and a markdown summary.

The rows and the markdown are built by plain functions from `status_report` and the stored row
errors (testable without Prefect); `publish_uploads` and the progress helpers are the thin part
that creates the artifacts. Artifacts carry file names, counts, line numbers, field names and
messages, never a cell value, so no client email reaches the UI.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from schemas.contract import Contract
from tasks import store
from tasks.errors import where
from tasks.settings import Settings
from tasks.status import read_status

MAX_TABLE_ROWS = 100  # newest files shown in the table; `sftp-import status` lists them all
MAX_FILES_IN_SUMMARY = 10  # files needing attention listed in the summary
MAX_ERRORS_PER_FILE = 5  # row errors shown per file; `sftp-import errors` lists them all
REASON_CHARS = 60  # a reason in a table is cut to one line of this many characters; the summary has it whole
FIGURES = ("rows_read", "rows_imported", "rows_rejected", "duplicates_removed", "emails_merged")
# read left to right: which file, what became of it and why (the reject code and the reason), when, the figures
TABLE_COLUMNS = ("name", "status", "code", "reason", "received", *FIGURES)
Reports = dict[str, tuple[list[dict[str, Any]], str]]  # client id: (table rows, summary markdown)


def artifact_key(prefix: str, client: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for a client: `uploads-north-wind`."""
    slug = re.sub(r"[^a-z0-9]+", "-", client.lower()).strip("-")
    return f"{prefix}-{slug}" if slug else prefix


def when_text(value: datetime | None, zone: Any = None) -> str | None:
    """`2026-12-01 06:00 CET`: a moment in `zone` (as stored when None), or None."""
    if value is None:
        return None
    return (value.astimezone(zone) if zone else value).strftime("%Y-%m-%d %H:%M %Z")


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


def one_line(text: str | None, limit: int = REASON_CHARS) -> str:
    """The first line of `text`, at most `limit` characters; `…` marks what was cut."""
    lines = (text or "").strip().splitlines() or [""]
    first = lines[0].rstrip()
    if len(first) > limit:
        return first[: limit - 1].rstrip() + "…"
    return first + (" …" if len(lines) > 1 else "")


def upload_rows(files: list[dict[str, Any]], limit: int = MAX_TABLE_ROWS) -> list[dict[str, Any]]:
    """The table rows (JSON-native values only) of a client's files, newest first, at most `limit`."""
    rows = []
    for file in files[:limit]:
        rows.append(
            {
                "name": str(file["name"]),
                "status": str(file["status"]),
                "code": file.get("code"),
                "reason": one_line(file.get("reason")),
                "received": when_text(file.get("received_at")),
                **{key: _count(file.get(key)) for key in FIGURES},
            }
        )
    return rows


def _row_error_lines(errors: list[dict[str, Any]]) -> list[str]:
    return [f"  - {where(e['line'], e['field'])}: {e['message']}" for e in errors]


def summary_markdown(contract: Contract, client: dict[str, Any]) -> str:
    """The summary of a client's uploads: counts, the files that need attention, the next import.

    `client` is one client of `status.read_status`: its files carry their first row errors."""
    files: list[dict[str, Any]] = client["files"]
    counts: dict[str, int] = {}
    for file in files:
        counts[file["status"]] = counts.get(file["status"], 0) + 1
    lines = [
        f"## {contract.name} (`{contract.id}`): uploads",
        "",
        f"Next import: **{when_text(client['next_import_at'], contract.zone)}** ({contract.timezone}); "
        "files received before it are imported then.",
        "",
        "Files: " + (", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none yet") + ".",
        "",
    ]
    attention = [
        f
        for f in files
        if f["status"] in (store.FileStatus.REJECTED, store.FileStatus.IGNORED) or (f.get("rows_rejected") or 0) > 0
    ]
    attention += [f for f in files if f.get("same_content_as") and f not in attention]
    if not attention:
        lines.append("Nothing needs attention.")
    else:
        lines += ["### Needs attention", ""]
    for file in attention[:MAX_FILES_IN_SUMMARY]:
        name = file["name"]
        if file["status"] in (store.FileStatus.REJECTED, store.FileStatus.IGNORED):
            lines.append(f"- **{name}**: {file['status']}: {file.get('reason') or 'no reason recorded'}")
        elif file.get("same_content_as") and not file.get("rows_rejected"):
            lines.append(f"- **{name}**: same content as {file['same_content_as']}")
        else:
            shown = file.get("errors") or []
            total = int(file.get("errors_total") or file.get("rows_rejected") or 0)
            lines.append(f"- **{name}**: {file['rows_rejected']} of {file.get('rows_read')} rows rejected")
            lines += _row_error_lines(shown[:MAX_ERRORS_PER_FILE])
            if total > MAX_ERRORS_PER_FILE or not shown:
                lines.append(f"  - … {total} errors in all")
            lines.append(f"  - full list: `sftp-import errors --client {contract.id} --file '{name}'`")
    if len(attention) > MAX_FILES_IN_SUMMARY:
        more = len(attention) - MAX_FILES_IN_SUMMARY
        lines.append(f"- … and {more} more: `sftp-import status --client {contract.id}`")
    if len(files) > MAX_TABLE_ROWS:
        lines += ["", f"The table shows the newest {MAX_TABLE_ROWS} of {len(files)} files."]
    return "\n".join(lines) + "\n"


def build_reports(settings: Settings, contracts: dict[str, Contract], now: datetime) -> Reports:
    """Per client id: (table rows, summary markdown), in one short read-only session (no writer lock needed)."""
    with settings.store.read() as con:
        return read_reports(con, contracts, now)


def read_reports(con: Any, contracts: dict[str, Contract], now: datetime) -> Reports:
    """`build_reports` on an open connection (an import reads its client's report under its own lock)."""
    report = read_status(con, contracts, now)
    return {
        client["id"]: (upload_rows(client["files"]), summary_markdown(contracts[client["id"]], client))
        for client in report["clients"]
    }


def publish_uploads(settings: Settings, contracts: dict[str, Contract], now: datetime) -> None:
    """Create (or refresh: same key, latest wins) `uploads-<client>` and `summary-<client>` artifacts."""
    publish_reports(build_reports(settings, contracts, now))


def publish_reports(reports: Reports) -> None:
    """Create (or refresh) the artifacts of reports made by `build_reports`."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    for client_id, (rows, markdown) in reports.items():
        create_table_artifact(
            table=rows,
            key=artifact_key("uploads", client_id),
            description=f"Files of {client_id}, newest first (reasons in full: {artifact_key('summary', client_id)})",
        )
        create_markdown_artifact(
            markdown=markdown,
            key=artifact_key("summary", client_id),
            description=f"Upload summary of {client_id}",
        )


def start_progress(subject: str, total: int, unit: str = "file(s) imported") -> UUID:
    """A progress artifact `import-progress-<subject>` for an import of `total` files (or clients), 0 % now."""
    from prefect.artifacts import create_progress_artifact

    artifact_id = create_progress_artifact(
        progress=100.0 if total == 0 else 0.0,
        key=artifact_key("import-progress", subject),
        description=f"{subject}: 0 of {total} {unit}",
    )
    return cast(UUID, artifact_id)  # the sync call returns the id, not a coroutine


def update_progress(artifact_id: UUID, subject: str, done: int, total: int, unit: str = "file(s) imported") -> None:
    """Move an import's progress artifact after a file (or a client) completes."""
    from prefect.artifacts import update_progress_artifact

    update_progress_artifact(
        artifact_id=artifact_id,
        progress=100.0 if total == 0 else round(100.0 * done / total, 1),
        description=f"{subject}: {done} of {total} {unit}",
    )


def slot_markdown(slot: str, day: str, imported: list[str], idle: list[str], failed: dict[str, str]) -> str:
    """The summary of one `import-slot` run: which clients imported, had nothing due, or failed."""
    total = len(imported) + len(idle) + len(failed)
    lines = [
        f"## Import slot {slot}, {day}",
        "",
        f"{total} client(s): {len(imported)} imported, {len(idle)} with nothing due, {len(failed)} failed.",
        "",
    ]
    lines += [f"- **{client}** failed: {message}" for client, message in sorted(failed.items())]
    if imported:
        lines.append(f"- Imported (see their `uploads-<client>` artifacts): {', '.join(sorted(imported))}")
    if idle:
        lines.append(f"- Nothing due: {', '.join(sorted(idle))}")
    return "\n".join(lines) + "\n"


def publish_slot_summary(slot: str, markdown: str) -> None:
    """The slot run's summary artifact `slot-<slot>` (latest run wins)."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=artifact_key("slot", slot), description=f"Import slot {slot}")
