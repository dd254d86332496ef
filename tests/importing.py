"""Helpers for the import tests: contracts, staged files with their ledger rows, a store to read."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.contacts import cell_reader
from schemas.contract import Contract, ContractField, load_contracts
from schemas.field_types import FIELD_TYPES, to_text
from schemas.samples import Record, write_rows
from tasks import formats, importer, store
from tasks.importer import FileImport
from tasks.settings import Settings
from tasks.staging import staged_url

if TYPE_CHECKING:
    import pandas as pd

    from tasks.validate import ParsedFile

BASE_TIME = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CLIENTS = load_contracts(Path(__file__).resolve().parents[1] / "examples" / "clients")


def make_contract(client: str, fields: list[dict[str, Any]], **extra: Any) -> Contract:
    """A contract built in the test (timezone and import time may be overridden)."""
    raw = {
        "id": client,
        "name": client.title(),
        "timezone": "Europe/Amsterdam",
        "import_time": "06:00",
        "fields": fields,
    }
    return Contract.model_validate(raw | extra)


def stage_bytes(settings: Settings, client: str, name: str, data: bytes, received_at: datetime = BASE_TIME) -> None:
    """Put a file where the sync stages it, with its `staged` ledger row."""
    path = Path(staged_url(settings.staging_url, client, name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with settings.store.write() as con:
        record_arrival(
            con,
            client=client,
            name=name,
            status="staged",
            size=len(data),
            mtime=received_at,
            received_at=received_at,
            staged_path=str(path),
            sha256=hashlib.sha256(data).hexdigest(),
        )


def stage_records(
    settings: Settings,
    contract: Contract,
    name: str,
    records: list[Record],
    received_at: datetime = BASE_TIME,
) -> None:
    """Stage typed contacts as a file of the format its extension names."""
    fmt = name.rsplit(".", 1)[-1]
    assert fmt in formats.writable()
    stage_bytes(settings, contract.id, name, write_rows(contract, records, fmt), received_at)


def _stored_as_text(contract: Contract) -> dict[str, ContractField]:
    """The contract's fields whose values reach the store as their exact text (decimals), by xml name."""
    return {f.id: f for f in contract.fields if FIELD_TYPES[f.type].stored_as_text}


def typed_records(parsed: ParsedFile, contract: Contract) -> list[dict[str, Any]]:
    """A parsed file's kept rows as typed values, without `_line`: a value the rows keep as its exact text
    (a decimal) is read by its field's cell reader, to compare with the records a file was written from."""
    readers = {name: cell_reader(field) for name, field in _stored_as_text(contract).items()}
    records: list[dict[str, Any]] = parsed.rows.drop(columns="_line").to_dict("records")
    for record in records:
        for name, read in readers.items():
            if record[name] is not None:
                record[name] = read(record[name])
    return records


def stored_frame(contract: Contract, records: list[dict[str, Any]]) -> pd.DataFrame:
    """Typed records as `tasks.validate` hands a file's rows to the store: a value kept as its exact text
    (a decimal) as its text form, and `_line` counted from 2 (under a header)."""
    import pandas as pd

    as_text = _stored_as_text(contract)
    rows = [{k: (to_text(as_text[k], v) or None) if k in as_text else v for k, v in r.items()} for r in records]
    frame = pd.DataFrame(rows, columns=[f.id for f in contract.fields]).astype(object)
    return frame.assign(_line=range(2, len(rows) + 2))


def contacts(settings: Settings, contract: Contract) -> list[dict[str, Any]]:
    """The client's stored contacts, by xml name."""
    with settings.store.read() as con:
        return store.read_contacts(con, contract)


def ledger(settings: Settings, client: str) -> dict[str, dict[str, Any]]:
    """The client's ledger rows by name (statistics included)."""
    with settings.store.read() as con:
        return {row["name"]: row for row in store.client_files(con, [client])[client]}


def import_file(settings: Settings, contract: Contract, name: str, run_id: str) -> FileImport:
    """Import one staged file on its own (a test's shortcut for `importer.import_client`'s commit of one file)."""
    (prepared,) = importer.prepare_files(settings, contract, [name])
    with settings.store.write() as con:
        return importer.commit_files(con, contract, [prepared], run_id)[0]


def record_arrival(con: Any, *, client: str, received_at: datetime, **row: Any) -> None:
    """One file's ledger row as the sync writes it (name, status, size, mtime, and any ARRIVAL_COLUMNS)."""
    store.record_arrivals(con, client, received_at, [row])
