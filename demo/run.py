"""`make demo`: the main job on embedded defaults, start to end, on real parts.

An embedded SFTP server (asyncssh, chrooted to .demo/sftp) holds the folders of the example
clients (examples/clients); each client uploads its sample files and a few bad ones over SFTP; the
`hourly-sync` flow stages them; a `daily-import` flow per client imports everything received so far;
then `status`, one of the result documents the clients find in their folder's `results/` (beside
their `samples/`) and the ops overview are printed. The flows run on the demo home's resident Prefect
server (started when it is not running, and left running: its UI shows the runs and artifacts, the
overview among them; `make ui` prints where).
State under .demo/ is reset on every run, except the Prefect server and its history.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = Path(os.environ.get("SFTP_IMPORT_DEMO_DIR") or REPO / ".demo")  # the demo's state (a test moves it)


def _environment() -> None:
    """Embedded defaults; anything already set in the environment wins."""
    defaults = {
        "SFTP_IMPORT_HOME": str(DEMO / "home"),
        "SFTP_IMPORT_CLIENTS_DIR": str(REPO / "examples" / "clients"),
        "SFTP_IMPORT_SETTLE_SECONDS": "0",  # the demo's uploads are complete when the sync runs
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def main() -> None:
    _environment()
    from demo.sftp_server import running_server
    from demo.uploads import upload_demo_files
    from deployments.server import prefect_home, use_server, watched_here
    from schemas.contract import load_contracts
    from tasks.overview import OVERVIEW_KEY, TODAY_KEY, build_overview
    from tasks.settings import load_settings
    from tasks.status import render_table, status_report

    settings = load_settings()
    for path in settings.home.glob("*"):  # a fresh store and staging; the resident server stays
        if path != prefect_home(settings.home):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(DEMO / "sftp", ignore_errors=True)
    contracts = load_contracts(settings.clients_dir)
    sftp_root = DEMO / "sftp"
    for contract in contracts.values():
        (sftp_root / contract.directory).mkdir(parents=True)

    with running_server(sftp_root, DEMO / "keys") as server:
        os.environ.update(server.env())
        settings = load_settings()
        print(f"SFTP server on {server.host}:{server.port} (host key checked against {server.known_hosts})")
        upload_demo_files(settings.sftp, contracts)

        started = use_server(settings.home, settings.prefect_port)
        if started is not None:
            print(f"Started the resident Prefect server {started.ui} (log {started.log}); it keeps running.")
        from flows.daily_import import daily_import
        from flows.hourly_sync import hourly_sync

        with watched_here():
            print("\nRunning the hourly-sync flow …")
            hourly_sync()
            for client in contracts:
                print(f"Running the daily-import flow for {client} (everything received so far) …")
                daily_import(client=client, now=True)

    print("\n" + render_table(status_report(settings, contracts, datetime.now(UTC))))
    print("Full row errors: sftp-import errors --client northwind --file northwind-with-bad-rows.csv")
    print("Contacts:        sftp-import export --client northwind --format csv")
    print(f"(with SFTP_IMPORT_HOME={settings.home} SFTP_IMPORT_CLIENTS_DIR={settings.clients_dir})")
    results = sftp_root / "northwind" / "results"  # what the client reads in its folder (samples: ../samples)
    print(f"\nThe client's result document {results / 'northwind-with-bad-rows.csv.json'}:")
    print((results / "northwind-with-bad-rows.csv.json").read_text(), end="")
    ui = os.environ["PREFECT_API_URL"].removesuffix("/api")
    print("\n" + build_overview(settings, contracts, datetime.now(UTC), ui, [])[1])
    print(f"The Prefect UI with these runs and artifacts: {ui} (artifacts: {ui}/artifacts)")
    print(f"Ops overview, every client, those needing attention first: {ui}/artifacts/key/{OVERVIEW_KEY}")
    print(f"Today across the platform (the text above): {ui}/artifacts/key/{TODAY_KEY}")


if __name__ == "__main__":
    main()
