"""Write `prefect.yaml` from the contracts: `python -m deployments.generate [--clients DIR] [--output FILE]`.

Deployments (addressed `flow-name/deployment-name`):
- `hourly-sync/hourly-sync` every hour, `retention/retention` daily, `backfill/backfill` and
  `daily-import/daily-import` (one client, on demand) without schedule;
- `import-slot/<HHMM>-<timezone>-<n>`: one per slot (a timezone and import time shared by clients),
  split in shards of at most SHARD_SIZE clients, with a cron schedule at that local time in that
  timezone. Its description names its clients; each client's import shows as its own task run
  `import-<client>-<date>` tagged `client:<id>`. The deployment is NOT tagged per client: a flow
  run inherits its deployment's tags, its tasks inherit them too (each tag is a concurrency-limit
  lookup at every task start) and an event may carry at most 100 related resources, so a full
  shard's run could not even be created (HTTP 500).

Why slots and not one deployment per client: a process-worker flow run costs ~4-6 s (a new Python
process importing Prefect, pandas, pandera and DuckDB, plus the run's API calls); 1,000 clients due
in the same minute would take well over an hour on one 2-core worker. A slot run pays that once
and runs its clients as tasks. Shards let more workers share one big slot.
The file is generated, so a contract change reaches the schedules by `make deploy` (generate,
deploy, then `deployments.setup prune` deletes slot deployments no contract needs any more).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from schemas.contract import Contract, load_contracts
from tasks.settings import load_settings

POOL = "sftp-import"
SHARD_SIZE = 100
SYNC_CRON = "5 * * * *"  # every hour, five past: clear of the round hours most import times use
RETENTION_CRON = "30 3 * * *"  # daily, 03:30 UTC
REPO = Path(__file__).resolve().parents[1]


def slot_name(timezone: str, import_time: str) -> str:
    """`0600-europe-amsterdam`: the import time then the timezone, lowercase letters, digits, dashes."""
    zone = re.sub(r"[^a-z0-9]+", "-", timezone.lower()).strip("-")
    return f"{import_time.replace(':', '')}-{zone}"


def cron_of(import_time: str) -> str:
    """The daily cron expression of an `HH:MM` time."""
    hours, minutes = import_time.split(":")
    return f"{int(minutes)} {int(hours)} * * *"


def slot_deployments(contracts: dict[str, Contract], shard_size: int = SHARD_SIZE) -> list[dict[str, Any]]:
    """One `import-slot` deployment per (timezone, import time) shard, clients sorted by id."""
    slots: dict[tuple[str, str], list[str]] = defaultdict(list)
    for client_id, contract in sorted(contracts.items()):
        slots[(contract.timezone, contract.import_time)].append(client_id)
    deployments = []
    for (timezone, import_time), clients in sorted(slots.items(), key=lambda item: (item[0][1], item[0][0])):
        for start in range(0, len(clients), shard_size):
            shard = clients[start : start + shard_size]
            name = f"{slot_name(timezone, import_time)}-{start // shard_size + 1}"
            deployments.append(
                {
                    "name": name,
                    "entrypoint": "flows/import_slot.py:import_slot",
                    "description": f"Daily import at {import_time} {timezone} of: {', '.join(shard)}",
                    "tags": ["daily-import"],  # not one per client: see the module's docstring
                    "parameters": {"slot": name, "clients": shard},
                    "schedules": [{"cron": cron_of(import_time), "timezone": timezone, "active": True}],
                    "work_pool": {"name": POOL},
                }
            )
    return deployments


def _fixed(name: str, entrypoint: str, description: str, tag: str, cron: str | None = None) -> dict[str, Any]:
    """A deployment that does not depend on the contracts (a UTC schedule, or none)."""
    schedules = [{"cron": cron, "timezone": "UTC", "active": True}] if cron else []
    return {
        "name": name,
        "entrypoint": entrypoint,
        "description": description,
        "tags": [tag],
        "schedules": schedules,
        "work_pool": {"name": POOL},
    }


def fixed_deployments() -> list[dict[str, Any]]:
    """The deployments that do not depend on the contracts."""
    return [
        _fixed(
            "hourly-sync",
            "flows/hourly_sync.py:hourly_sync",
            "Every client's SFTP folder into staging and the ledger",
            "sync",
            SYNC_CRON,
        ),
        _fixed(
            "retention",
            "flows/retention.py:retention_flow",
            "Delete files older than SFTP_IMPORT_RETENTION_DAYS from SFTP and staging",
            "retention",
            RETENTION_CRON,
        ),
        _fixed(
            "backfill",
            "flows/backfill.py:backfill",
            "Import named files of one client now (parameters client, files)",
            "backfill",
        ),
        _fixed(
            "daily-import",
            "flows/daily_import.py:daily_import",
            "One client's daily import on demand (parameters client, now)",
            "daily-import",
        ),
    ]


CODE_DIR = "{{ $SFTP_IMPORT_CODE_DIR }}"  # the checkout the worker runs the flows from (set by make deploy/worker)


def prefect_yaml(contracts: dict[str, Contract]) -> str:
    """The text of prefect.yaml. The pull step's folder is an environment variable, not this machine's path."""
    document = {
        "name": "sftp-contact-import",
        "prefect-version": "3.9.1",
        "build": None,
        "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": CODE_DIR}}],
        "deployments": fixed_deployments() + slot_deployments(contracts),
    }
    header = (
        "# Generated by `python -m deployments.generate` from the client contracts (SFTP_IMPORT_CLIENTS_DIR).\n"
        "# Do not edit: change a contract, then `make deploy` (regenerates this file and deploys it).\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=Path, help="contracts folder (default SFTP_IMPORT_CLIENTS_DIR)")
    parser.add_argument("--output", type=Path, default=REPO / "prefect.yaml")
    args = parser.parse_args(argv)
    clients_dir = (args.clients or load_settings().clients_dir).resolve()
    contracts = load_contracts(clients_dir)
    args.output.write_text(prefect_yaml(contracts), encoding="utf-8")
    slots = len({(c.timezone, c.import_time) for c in contracts.values()})
    print(f"wrote {args.output}: {len(contracts)} client(s) in {slots} import slot(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
