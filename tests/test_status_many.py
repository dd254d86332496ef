"""`status` reads all its clients at once: each client gets exactly what reading it alone gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tasks import store
from tasks.errors import RowError
from tests.importing import record_arrival

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CLIENTS = ["acme", "globex", "initech", "nobody"]  # nobody has no rows at all


def _fill(con: Any) -> None:
    """Per client: files arriving together (ties), one later, one purged, a waiting and an ignored one,
    and row errors under a file name every client uses (a different number each)."""
    for i, client in enumerate(CLIENTS[:-1]):
        together = [{"name": f"{n}.csv", "status": "staged", "size": 1, "mtime": NOW} for n in ("b", "a", "c")]
        store.record_arrivals(con, client, NOW - timedelta(days=1), together)
        record_arrival(con, client=client, name="late.csv", status="staged", size=1, mtime=NOW, received_at=NOW)
        store.record_purge(con, client, [], [], ["c.csv"], NOW)
        store.record_waiting(con, client, "w.csv", 1, NOW, NOW)
        store.record_ignored(con, client, "a.csv", 2, NOW, NOW - timedelta(hours=1), "name already used")
        errors = [RowError(line, "Amount", f"bad {line}") for line in range(9, 2 + 3 * i, -1)]
        store.record_row_errors(con, client, "a.csv", errors)


def test_many_clients_read_at_once_get_what_each_reads_alone(tmp_path: Path) -> None:
    with store.open_store(tmp_path / "store.duckdb") as con:
        _fill(con)
        files, errors = store.client_files(con, CLIENTS), store.client_errors(con, CLIENTS, 2)
        for client in CLIENTS:
            assert files[client] == store.client_files(con, [client])[client]
            assert errors[client] == store.client_errors(con, [client], 2)[client]
    acme = [(f["name"], f["status"]) for f in files["acme"]]
    assert acme == [
        ("w.csv", "waiting"),  # still being uploaded: the newest of all
        ("late.csv", "staged"),
        ("a.csv", "ignored"),
        ("a.csv", "staged"),  # received together: by name
        ("b.csv", "staged"),
        ("c.csv", "purged"),
    ]
    assert files["nobody"] == [] and errors["nobody"] == {}
    assert {client: errors[client]["a.csv"][1] for client in CLIENTS[:-1]} == {"acme": 7, "globex": 4, "initech": 1}
    assert errors["acme"]["a.csv"][0] == [
        {"line": 3, "field": "Amount", "message": "bad 3"},
        {"line": 4, "field": "Amount", "message": "bad 4"},
    ]
