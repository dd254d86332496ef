"""The result documents in each client's `results/` folder: one JSON per upload name, and the row errors
of an imported file with rejected rows as CSV (plain functions; schemas/result.schema.json is the format).

A document follows its file through its life: received (with the pickup check and when it will be
imported), imported or rejected, re-uploads ignored under its name, purged. It is a pure function
of the store: the ledger row, the ignored re-uploads, the row errors and the client's contract.
Every change marks the name in the store's outbox (`store.mark_results`); whoever holds the store
then builds the due documents (`pending_documents`), writes them after letting go of the store
(`publish`: temporary name, then rename) and records them written. A write that fails stays due
and is written by the next sync pass; it never fails the sync, nor an import."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from schemas.contract import Contract
from tasks import store
from tasks.export import write_errors_csv
from tasks.settings import Settings
from tasks.temporary_names import writing_name

if TYPE_CHECKING:  # the SSH stack is loaded by `publish` only: an import's peak memory is spent without it
    from tasks.sftp import Sftp

log = logging.getLogger(__name__)

DOCUMENT_VERSION = 1
FOLDER = "results"
STATUS = {
    store.FileStatus.STAGED: "received",
    store.FileStatus.IMPORTED: "imported",
    store.FileStatus.REJECTED: "rejected",
}  # ledger status -> document's
PICKUP_SHOWN = (  # what a document shows of the stored pickup check (its timing is for ops)
    "outcome",
    "format",
    "encoding",
    "delimiter",
    "columns",
    "rows",
    "row_errors",
    "rows_with_errors",
    "first_row_errors",
    "rejection",
    "warnings",
)


@dataclass(frozen=True)
class Document:
    """One upload's result, ready to write: its JSON and, for an imported file with row errors, its CSV."""

    client: str
    name: str
    version: int  # the outbox's version it shows
    body: bytes
    errors_csv: bytes | None = None

    @property
    def key(self) -> store.ResultKey:
        return self.client, self.name, self.version


NAME_MAX = 255  # bytes in a file name, on the SFTP server's filesystem as on most
_WRITING = len(writing_name("").encode())  # what `Sftp.write_atomic`'s temporary name adds
_ROOM = NAME_MAX - _WRITING - len(".errors.csv")  # bytes left for the upload's part of a result's name


def result_stem(name: str) -> str:
    """What an upload's result files are named after: its name, or for a name too long to take the
    suffixes (more than 226 bytes), its first whole characters, `~` and 10 hex digits of its sha256
    (the document inside gives the full name)."""
    encoded = name.encode()
    if len(encoded) <= _ROOM:
        return name
    head = encoded[: _ROOM - 11].decode("utf-8", errors="ignore")  # a character cut in two is dropped
    return f"{head}~{hashlib.sha256(encoded).hexdigest()[:10]}"


def json_name(name: str) -> str:
    """Where an upload's result document is, in the client's folder."""
    return f"{FOLDER}/{result_stem(name)}.json"


def errors_name(name: str) -> str:
    """Where an imported upload's row errors are, in the client's folder."""
    return f"{FOLDER}/{result_stem(name)}.errors.csv"


def result_of(path: str) -> str | None:
    """The `result_stem` a file of the results folder belongs to (None for anything else)."""
    for suffix in (".errors.csv", ".json"):
        if path.endswith(suffix) and not path.startswith("."):
            return path[: -len(suffix)]
    return None


def moment(value: datetime, contract: Contract) -> dict[str, str]:
    """A time in UTC and in the client's timezone, ISO 8601 to the second."""
    return {
        "utc": value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "local": value.astimezone(contract.zone).isoformat(timespec="seconds"),
    }


def _local_text(value: datetime, contract: Contract) -> str:
    return value.astimezone(contract.zone).strftime("%Y-%m-%d %H:%M %Z")


def _received(row: dict[str, Any], contract: Contract) -> dict[str, Any]:
    received_at: datetime = row["received_at"]
    on_arrival = (
        row["status"] == store.FileStatus.REJECTED and row["imported_at"] is None
    )  # refused by the sync: no import
    import_at = None if on_arrival else contract.next_cutoff(received_at)
    return {
        "at": moment(received_at, contract),
        "size": row["size"],
        "sha256": row["sha256"],
        "same_content_as": row["same_content_as"],
        "import_at": moment(import_at, contract) if import_at else None,
        "after_cutoff": bool(
            import_at and import_at.astimezone(contract.zone).date() > received_at.astimezone(contract.zone).date()
        ),
    }


def _pickup(row: dict[str, Any]) -> dict[str, Any] | None:
    if not row["pickup"]:
        return None
    stored = json.loads(row["pickup"])
    return {key: stored.get(key) for key in PICKUP_SHOWN}


def _import(row: dict[str, Any], contract: Contract) -> dict[str, Any] | None:
    if row["status"] != store.FileStatus.IMPORTED:
        return None
    return {
        "at": moment(row["imported_at"], contract),
        "format": row["format"],
        "encoding": row["encoding"],
        "delimiter": row["delimiter"],
        **{key: int(row[key] or 0) for key in store.IMPORT_STATS},
        "warnings": row["warnings"].split("\n") if row["warnings"] else [],
        "errors_file": errors_name(row["name"]) if row["rows_rejected"] else None,
    }


def _rejection(row: dict[str, Any], contract: Contract) -> dict[str, Any] | None:
    if row["status"] != store.FileStatus.REJECTED:
        return None
    at = row["imported_at"] or row["received_at"]
    return {"at": moment(at, contract), "code": row["code"], "message": row["reason"] or ""}


def _check_sentence(check: dict[str, Any] | None) -> str:
    """What the check at pickup found, in a sentence ('' for a file that was not checked)."""
    if check is None:
        return ""
    if check["outcome"] == "rejected":
        return (
            f" The check at pickup says it will be rejected: {check['rejection']['message']}"
            " Upload a corrected file under a new name."
        )
    if check["outcome"] == "row_errors":
        return f" The check at pickup found errors in {check['rows_with_errors']:,} of {check['rows']:,} rows."
    if check["outcome"] == "ok":
        return f" The check at pickup found {check['rows']:,} rows and no errors."
    return " The check at pickup could not run; the import will say what it finds."


def _outcome_sentence(document: dict[str, Any], contract: Contract) -> str:
    """Imported (rows), rejected (why), or received (when it will be imported, what the check found)."""
    done, received = document["import"], document["received"]
    if done:
        rows, rejected = done["rows_read"], done["rows_rejected"]
        text = (
            f"Imported: {done['rows_imported']:,} of {rows:,} rows." if rows else "Imported: 0 rows (no contact rows)."
        )
        return text + (f" {rejected:,} rows rejected: see {done['errors_file']}." if rejected else "")
    if document["rejection"]:
        return f"Rejected: {document['rejection']['message']}"
    when = _local_text(datetime.fromisoformat(received["import_at"]["utc"]), contract)
    late = (
        f"after today's import time ({contract.import_time} {contract.timezone}); " if received["after_cutoff"] else ""
    )
    return f"Received {late}to be imported at {when}." + _check_sentence(document["pickup_check"])


def _summary(document: dict[str, Any], contract: Contract) -> str:
    """One or two sentences for a person reading the document."""
    text = _outcome_sentence(document, contract)
    if document["received"]["same_content_as"]:
        text += f" It has the same content as {document['received']['same_content_as']}."
    if document["ignored"]:
        text += f" A re-upload under the name {document['file']} was ignored: upload new files under new names."
    if document["purged"]:
        text += " The file was deleted from the folder (retention)."
    return text


def result_document(
    contract: Contract,
    row: dict[str, Any],
    ignored: list[dict[str, Any]],
    changed_at: datetime,
    retention_days: int,
) -> dict[str, Any]:
    """The result document of one upload: its ledger row (`store.result_files`), the re-uploads ignored
    under its name (`store.ignored_uploads`), when it last changed, and the retention period."""
    document: dict[str, Any] = {
        "document_version": DOCUMENT_VERSION,
        "client": contract.id,
        "file": row["name"],
        "status": STATUS[row["status"]],
        "summary": "",
        "updated_at": moment(changed_at, contract),
        "timezone": contract.timezone,
        "received": _received(row, contract),
        "pickup_check": _pickup(row),
        "import": _import(row, contract),
        "rejection": _rejection(row, contract),
        "ignored": [{"at": moment(i["seen_at"], contract), "size": i["size"], "message": i["reason"]} for i in ignored],
        "purged": {"at": moment(row["purged_at"], contract)} if row["purged_at"] else None,
        "kept_until": moment(row["received_at"] + timedelta(days=retention_days), contract),
    }
    document["summary"] = _summary(document, contract)
    return document


def errors_csv(errors: list[dict[str, Any]]) -> bytes:
    """A file's row errors (line, field, message) as CSV, cells neutralised against formula injection."""
    out = io.StringIO()
    write_errors_csv(errors, out)
    return out.getvalue().encode("utf-8")


def pending_documents(con: Any, contracts: dict[str, Contract], retention_days: int) -> dict[str, list[Document]]:
    """Per client (of these contracts) with any, its result documents changed since last written."""
    pending = store.pending_results(con, sorted(contracts))
    keys = [(p["client"], p["name"]) for p in pending]
    files = store.result_files(con, keys)
    ignored = store.ignored_uploads(con, keys)
    with_errors = [k for k, row in files.items() if row["status"] == store.FileStatus.IMPORTED and row["rows_rejected"]]
    errors = store.row_errors_of(con, with_errors)
    documents: dict[str, list[Document]] = {}
    for item in pending:
        key = (item["client"], item["name"])
        if key not in files:
            continue  # a name the ledger does not know has no document
        contract = contracts[item["client"]]
        body = result_document(contract, files[key], ignored[key], item["changed_at"], retention_days)
        text = (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        csv = errors_csv(errors[key]) if key in errors else None
        documents.setdefault(contract.id, []).append(Document(contract.id, item["name"], item["version"], text, csv))
    return documents


def write_results(connection: Sftp, contract: Contract, documents: list[Document]) -> list[store.ResultKey]:
    """Write documents into the client's `results/` folder (the errors CSV first); those written.

    A document that cannot be written is logged and left due: the next sync pass writes it."""
    written = []
    for document in documents:
        try:
            if document.errors_csv is not None:
                connection.write_atomic(contract.directory, errors_name(document.name), document.errors_csv)
            connection.write_atomic(contract.directory, json_name(document.name), document.body)
        except Exception as exc:  # the next pass tries again; nothing else depends on this write
            log.warning("%s: result of %s not written, retried at the next sync: %s", contract.id, document.name, exc)
            continue
        written.append(document.key)
    return written


def publish(settings: Settings, contract: Contract, documents: list[Document]) -> list[store.ResultKey]:
    """`write_results` over a connection of its own; a connection that fails writes nothing (logged, never raised)."""
    if not documents:
        return []
    from tasks import sftp

    try:
        with sftp.connect(settings.sftp) as connection:
            return write_results(connection, contract, documents)
    except Exception as exc:
        log.warning("%s: %d result(s) not written, retried at the next sync: %s", contract.id, len(documents), exc)
        return []
