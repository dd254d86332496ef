"""Run a client's import in this process and die (os._exit) at a chosen point of a file's transaction.

`python -m tests.crash_import CLIENT [POINT N]`: POINT is before | during | after, N the file (1-based)
whose transaction is interrupted: before BEGIN, after all its writes (contacts, row errors, ledger)
but before COMMIT, or right after COMMIT. Without POINT it runs to the end. The crash is the only
fake: the import is the real one."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

from tasks import importer, store
from tasks.settings import load_settings
from tests.importing import CLIENTS

CRASHED = 3


def _install(point: str, target: int) -> None:
    real_commit, real_record = importer._commit, store.record_file_result
    file = 0

    def commit(*args: Any, **kwargs: Any) -> Any:
        nonlocal file
        file += 1
        if point == "before" and file == target:
            os._exit(CRASHED)
        outcome = real_commit(*args, **kwargs)
        if point == "after" and file == target:
            os._exit(CRASHED)
        return outcome

    def record(*args: Any, **kwargs: Any) -> None:
        real_record(*args, **kwargs)
        if point == "during" and file == target:
            os._exit(CRASHED)

    importer._commit = commit  # type: ignore[assignment]
    store.record_file_result = record  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    client, *crash = argv
    if crash:
        _install(crash[0], int(crash[1]))
    settings = load_settings()
    contract = CLIENTS[client]
    run_id = os.environ.get("CRASH_IMPORT_RUN_ID", f"run-{os.getpid()}")  # set: a retry of that run
    started = datetime.now(UTC)
    with settings.store.write() as con:
        names = store.staged_files(con, client, None)
    importer.import_client(settings, contract, names, run_id=run_id, kind="daily", cutoff=None, started_at=started)


if __name__ == "__main__":
    main(sys.argv[1:])
