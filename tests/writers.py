"""A writer of the store in another process, holding it: to test what waits for it and what survives its kill."""

from __future__ import annotations

import subprocess
import sys

# opens the settings' store for writing northwind (DuckDB: the writer lock; PostgreSQL: the client's
# lock), writes a ledger row in an open transaction, says "holding", then holds it for argv[1] seconds
HOLD = """
import sys, time
from datetime import datetime, UTC
from tasks.settings import load_settings
from tests.importing import record_arrival
with load_settings().store.write(client="northwind") as con:
    con.execute("BEGIN TRANSACTION")
    record_arrival(con, client="northwind", name="held.csv", status="staged", size=3,
                         mtime=datetime.now(UTC), received_at=datetime.now(UTC), sha256="ab")
    if sys.argv[2] == "commit":
        con.execute("COMMIT")
    print("holding", flush=True)
    time.sleep(float(sys.argv[1]))
"""


def hold_store(seconds: float, *, commit: bool = True) -> subprocess.Popen[str]:
    """A process holding the store of the environment's settings for writing northwind (its own process
    group, so it can be killed whole)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(seconds), "commit" if commit else "open"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "holding"
    return process
