"""What `status` shows: per client, its files and the next import time (plain data, no Prefect)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.contract import Contract
from tasks import store
from tasks.settings import Settings

ERRORS_SHOWN = 20  # per file; `sftp-import errors` lists them all


def status_report(settings: Settings, contracts: dict[str, Contract], now: datetime) -> dict[str, Any]:
    """{"clients": [{"id", "next_import_at", "files": [...]}]} read from the store (read-only).

    Each file carries its first row errors (`errors`: line, field, message) and `errors_total`."""
    with settings.store.read() as con:
        return read_status(con, contracts, now)


def read_status(con: Any, contracts: dict[str, Contract], now: datetime) -> dict[str, Any]:
    """`status_report` on an open connection (a writer reads its clients' status without reopening).

    All the clients are read at once: one query per table, however many clients there are."""
    ids = sorted(contracts)
    all_files = store.client_files(con, ids)
    all_errors = store.client_errors(con, ids, ERRORS_SHOWN)
    clients = []
    for client_id in ids:
        next_import = contracts[client_id].next_cutoff(now)
        files, errors = all_files[client_id], all_errors[client_id]
        for row in files:
            if row["status"] in (store.FileStatus.WAITING, store.FileStatus.STAGED):
                row["next_import_at"] = next_import
            ledger_row = row["status"] not in (
                store.FileStatus.WAITING,
                store.FileStatus.IGNORED,
            )  # a re-upload shares its name
            row["errors"], row["errors_total"] = errors.get(row["name"], ([], 0)) if ledger_row else ([], 0)
        clients.append({"id": client_id, "next_import_at": next_import, "files": files})
    return {"clients": clients}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z")
    return str(value)


TABLE_COLUMNS = (
    ("name", "file"),
    ("status", "status"),
    ("format", "format"),  # as read: `csv`, or with what was unwrapped, `csv (pgp, gzip)`
    ("received_at", "received"),
    ("rows_read", "read"),
    ("rows_imported", "imported"),
    ("rows_rejected", "rejected"),
    ("duplicates_removed", "dupes"),
    ("emails_merged", "merged"),
    ("new_contacts", "new"),
    ("updated_contacts", "updated"),
    ("reason", "reason"),
)


def _remark(client: str, file: dict[str, Any]) -> str:
    """The reason of a rejection, else what ops should notice: same bytes as another file, warnings."""
    if file.get("reason"):
        return str(file["reason"])
    notes = [f"same content as {file['same_content_as']}"] if file.get("same_content_as") else []
    if file.get("errors"):
        notes.append(f"row errors: sftp-import errors --client {client} --file {file['name']}")
    if file.get("warnings"):
        notes.append(str(file["warnings"]))
    return "; ".join(notes)


def render_table(report: dict[str, Any]) -> str:
    """A plain-text table per client, readable in a terminal."""
    out: list[str] = []
    for client in report["clients"]:
        out.append(f"{client['id']}  (next import {_cell(client['next_import_at'])})")
        rows = [
            [_cell(f.get(key)) for key, _ in TABLE_COLUMNS[:-1]] + [_remark(client["id"], f)] for f in client["files"]
        ]
        if not rows:
            out.append("  no files yet\n")
            continue
        header = [title for _, title in TABLE_COLUMNS]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        widths[-1] = len(header[-1])  # the reason runs on freely
        for line in [header, *rows]:
            out.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        out.append("")
    return "\n".join(out)
