"""After a full run (`make demo`): no secret and no client's email address in what ops and Prefect keep.

The demo's SFTP private key (its base64 body) and every email address its clients upload are looked
for in the command's output, the resident server's log, the server's database file (flow and task
runs, logs, events, artifacts) and every artifact read back through the API. Emails belong only in
the store's contacts."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from demo.uploads import demo_uploads
from deployments import server
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
