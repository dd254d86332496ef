"""The pickup check: the sync reads and validates a file it has just staged, as the import will, and
keeps a summary for the client's result document (no store access, no contacts written).

So a client learns within the hour what its file's import will say: the columns found, the rows,
the row errors (their count and the first 20) or the reason the file will be rejected."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from schemas.contract import Contract
from tasks.importer import prepare_file
from tasks.settings import Settings

log = logging.getLogger(__name__)

FIRST_ERRORS = 20  # row errors kept per file; the errors CSV after the import has them all

Outcome = Literal["ok", "row_errors", "rejected", "not_checked"]


@dataclass(frozen=True)
class PickupCheck:
    """What the read and validation of a received file found (JSON-ready, stored in the ledger row)."""

    outcome: Outcome
    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    columns: list[str] = field(default_factory=list)  # the header's names or the XML element names found
    rows: int = 0
    row_errors: int = 0  # every error found (a row can have several)
    rows_with_errors: int = 0  # the rows the import will reject
    first_row_errors: list[dict[str, Any]] = field(default_factory=list)  # line, field, message
    rejection: dict[str, str] | None = None  # code, message: the import will reject the whole file
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def check_staged(settings: Settings, contract: Contract, name: str) -> PickupCheck:
    """Read and validate the staged copy of `name` as the import will; never raises (`not_checked` then)."""
    started = time.perf_counter()
    try:
        prepared = prepare_file(settings, contract, name)
    except Exception as exc:  # the sync must go on; the import will meet (and report) the same problem
        log.warning("%s/%s: pickup check could not run: %s", contract.id, name, type(exc).__name__)
        return PickupCheck("not_checked", seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if prepared.rejected is not None:
        rejection = {"code": str(prepared.rejected.code), "message": prepared.rejected.message}
        return PickupCheck("rejected", rejection=rejection, seconds=seconds)
    parsed = prepared.parsed
    assert parsed is not None
    lines = {e.line for e in parsed.errors}
    return PickupCheck(
        "row_errors" if lines else "ok",
        format=parsed.format,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        columns=parsed.columns,
        rows=parsed.rows_read,
        row_errors=len(parsed.errors),
        rows_with_errors=len(lines),
        first_row_errors=[
            {"line": e.line, "field": e.field, "message": e.message} for e in parsed.errors[:FIRST_ERRORS]
        ],
        warnings=parsed.warnings,
        seconds=seconds,
    )
