"""After a full run (`make demo`): no secret and no client's email address in what ops and Prefect keep.

The demo's SFTP private key (its base64 body) and every email address its clients upload are looked
for in the command's output, the resident server's log, the server's database file (flow and task
runs, logs, events, artifacts) and every artifact read back through the API. Emails belong only in
the store's contacts. With a password login, the password is in none of those places, nor in the
store, on either backend."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from demo.uploads import demo_uploads
from deployments import server
from tasks.store import Store
from tests.conftest import REPO
from tests.importing import CLIENTS

EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@pytest.mark.slow
def test_no_secret_or_email_in_output_logs_database_or_artifacts(tmp_path: Path) -> None:
    demo, port = tmp_path / "demo", server.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SFTP_IMPORT_", "MAKE", "MFLAGS"))}
    env |= {"SFTP_IMPORT_DEMO_DIR": str(demo), "SFTP_IMPORT_PREFECT_PORT": str(port)}
    try:
        done = subprocess.run(["make", "demo"], cwd=REPO, env=env, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        api = f"http://127.0.0.1:{port}/api"
        artifacts = httpx.post(f"{api}/artifacts/filter", json={"limit": 200}, timeout=30).json()
        assert {"uploads-overview", "summary-northwind"} <= {a["key"] for a in artifacts}
    finally:
        server.stop(demo / "home")
    key_body = [
        line for line in (demo / "keys" / "client_ed25519_key").read_bytes().splitlines() if b"-----" not in line
    ]
    emails = {m for c in CLIENTS.values() for data in demo_uploads(c).values() for m in EMAIL.findall(data)}
    assert key_body and len(emails) >= 5
    prefect = demo / "home" / "prefect"
    places = {
        "the demo's output": done.stdout + done.stderr,
        "the server's log": (prefect / "server.log").read_bytes(),
        "the server's database": b"".join(p.read_bytes() for p in prefect.glob("*.db*")),
        "the artifacts": repr(artifacts).encode(),
    }
    assert b"uploads-overview" in places["the server's database"]  # the right database, read whole
    for where, text in places.items():
        assert not [line for line in key_body if line in text], f"the SFTP private key is in {where}"
        assert not [e for e in emails if e in text], f"client emails are in {where}"


def _store_bytes(backend: Store) -> bytes:
    """The store's rows, every table, as text (the DuckDB file and PostgreSQL's pages compress or split text)."""
    from tasks.store.contacts import contacts_table
    from tasks.store.copy import TABLES, contacts_clients

    with backend.read() as con:
        tables = [*TABLES, *map(contacts_table, contacts_clients(con))]
        return repr([con.execute(f"SELECT * FROM {table}").fetchall() for table in tables]).encode()


@pytest.mark.usefixtures("prefect_harness")
def test_a_password_login_leaves_the_password_in_no_log_artifact_database_or_store(
    tmp_path: Path, backend: Store, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    from demo.sftp_server import running_server
    from flows.daily_import import daily_import
    from flows.hourly_sync import hourly_sync
    from tests.sftp_fixtures import point_env_at

    password = "pw-" + os.urandom(12).hex()
    root = tmp_path / "root"
    for contract in CLIENTS.values():
        (root / contract.directory).mkdir(parents=True)
        for name, data in demo_uploads(contract).items():
            (root / contract.directory / name).write_bytes(data)
            os.utime(root / contract.directory / name, (1_700_000_000, 1_700_000_000))  # long complete
    with running_server(root, tmp_path / "state", password=password) as sftp_server:
        point_env_at(monkeypatch, sftp_server, "/", settle=0)
        monkeypatch.delenv("SFTP_IMPORT_SFTP_KEY_FILE")
        monkeypatch.setenv("SFTP_IMPORT_SFTP_PASSWORD", password)
        synced = hourly_sync()
        assert sum(c["staged"] for c in synced["clients"].values()) >= 5
        for client in CLIENTS:
            daily_import(client=client, now=True)

    from prefect.client.orchestration import get_client

    async def artifacts() -> str:
        async with get_client() as client:
            return repr(await client.read_artifacts(limit=200))

    import asyncio

    database = Path(str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).split("///")[-1])
    out, err = capfd.readouterr()
    places = {
        "the output and logs": (out + err).encode(),
        "the artifacts": asyncio.run(artifacts()).encode(),
        "Prefect's database": b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*")),
        "the store": _store_bytes(backend),
    }
    assert b"summary-northwind" in places["Prefect's database"]  # the right database, read whole
    assert b"northwind-sample.csv" in places["the store"]
    for where, text in places.items():
        assert password.encode() not in text, f"the SFTP password is in {where}"
