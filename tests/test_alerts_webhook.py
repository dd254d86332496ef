"""`make deploy`'s alert automations on a real Prefect server: a rejected file reaches a real webhook, once."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from deployments import local, server
from deployments.generate import REPO
from deployments.setup import ALERT_AUTOMATIONS, SILENT_RUNS
from tasks import alerts
from tasks.settings import load_settings
from tests.importing import stage_bytes

WAIT_SECONDS = 60.0  # for the webhook to be called
QUIET_SECONDS = 5.0  # then no second call may come


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    """A local HTTP server collecting the bodies POSTed to it: (its URL, the bodies)."""
    received: list[bytes] = []

    class Collect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Collect)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}/alerts", received
    finally:
        http.shutdown()
        http.server_close()


def _run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_a_rejected_file_reaches_the_webhook_once(home: Path, tmp_path: Path, webhook: tuple[str, list[bytes]]) -> None:
    url, received = webhook
    running, _ = server.start(home, port=server.free_port(), ui=False)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env |= server.client_env(home, running.url)
        unset = _run(env, str(local.BIN / "python"), "-m", "deployments.setup")
        assert "SFTP_IMPORT_ALERT_WEBHOOK_URL is not set; no alert automations created" in unset.stdout
        env["SFTP_IMPORT_ALERT_WEBHOOK_URL"] = url
        _run(env, str(local.BIN / "python"), "-m", "deployments.setup")
        again = _run(env, str(local.BIN / "python"), "-m", "deployments.setup")  # idempotent
        assert "automation 'sftp-import: file rejected' updated" in again.stdout
        automations = httpx.post(f"{running.url}/automations/filter", json={}, timeout=10).json()
        assert sorted(a["name"] for a in automations) == sorted(
            [SILENT_RUNS, *(n for n, _ in ALERT_AUTOMATIONS.values())]
        )

        csv = tmp_path / "contacts.csv"  # no header row: the first row, an email address, is refused as the header
        csv.write_bytes(b"ada@example.com,Ada,Lo,007,01/02/2026,1.5,SMB\n")
        subprocess.run(["gzip", str(csv)], check=True)
        stage_bytes(load_settings(), "northwind", "no-header.csv.gz", (tmp_path / "contacts.csv.gz").read_bytes())
        imported = _run(env, str(local.BIN / "sftp-import"), "import", "--client", "northwind", "--now")
        assert "no-header.csv.gz: rejected" in imported.stdout

        deadline = time.monotonic() + WAIT_SECONDS
        while not received and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(QUIET_SECONDS)
        assert len(received) == 1, received
        posted = json.loads(received[0])
        assert posted["subject"] == "File rejected: northwind"
        assert posted["body"].startswith("northwind: no-header.csv.gz: rejected at import: The header does not match")
        assert alerts.EMAIL.search(received[0].decode()) is None
    finally:
        server.stop(home)
