"""A writer of the store in another process, holding it: to test what waits for it and what survives its kill."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# opens the store for writing (taking the writer lock), writes a ledger row in an open transaction,
# says "holding", then holds the store for argv[2] seconds
HOLD = """
import sys, time
from pathlib import Path
from datetime import datetime, UTC
from tasks import store
from tests.importing import record_arrival
with store.open_store(Path(sys.argv[1])) as con:
    con.execute("BEGIN TRANSACTION")
    record_arrival(con, client="northwind", name="held.csv", status="staged", size=3,
                         mtime=datetime.now(UTC), received_at=datetime.now(UTC), sha256="ab")
    if sys.argv[3] == "commit":
        con.execute("COMMIT")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_store(db: Path, seconds: float, *, commit: bool = True) -> subprocess.Popen[str]:
    """A process holding the store at `db` (its own process group, so it can be killed whole)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), str(seconds), "commit" if commit else "open"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "holding"
    return process
