"""Several machines, shown on one: for `make demo-cluster` (demo/cluster.py) and tests/test_cluster.py.

A "machine" is a process worker started with `--name <machine>` and an environment of its own: its
SFTP_IMPORT_HOME, its PREFECT_HOME and its copy of the SFTP key and known_hosts under that home. What
the machines share is what real ones would: the Prefect server's address, the PostgreSQL store's URL
and the staging URL.

The Prefect API is spoken over HTTP with httpx: starting deployment runs, waiting for them and
reading which machine took each (the worker's `submitted-flow-run` event names it).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from deployments import local

SUBMITTED = "prefect.worker.submitted-flow-run"
SFTP_FILES = ("SFTP_IMPORT_SFTP_KEY_FILE", "SFTP_IMPORT_SFTP_KNOWN_HOSTS")  # each machine keeps its own copy


def deploy(env: dict[str, str], folder: Path) -> None:
    """The work pool and every deployment of the contracts (`make deploy`), prefect.yaml written to `folder`."""
    python, prefect_file = str(local.BIN / "python"), folder / "prefect.yaml"
    local.run_checked([python, "-m", "deployments.setup"], env)
    local.run_checked([python, "-m", "deployments.generate", "--output", str(prefect_file)], env)
    local.run_checked(
        [str(local.BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)], env
    )


def machine_env(shared: dict[str, str], home: Path) -> dict[str, str]:
    """The shared settings (server, store, staging, SFTP) with this machine's own home, Prefect home and
    copies of the SFTP key and known_hosts: nothing else on disk is shared."""
    home.mkdir(parents=True, exist_ok=True)
    env = shared | {"SFTP_IMPORT_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    for key in SFTP_FILES:
        if shared.get(key):
            env[key] = str(shutil.copy2(shared[key], str(home / Path(shared[key]).name)))
    return env


def run_deployment(api: str, deployment: str, parameters: dict[str, Any] | None = None) -> str:
    """Start a run of `flow/deployment` now (a worker picks it up); its flow run id."""
    flow, name = deployment.split("/")
    found = httpx.get(f"{api}/deployments/name/{flow}/{name}", timeout=30).raise_for_status().json()
    body = {"parameters": parameters or {}}
    created = httpx.post(f"{api}/deployments/{found['id']}/create_flow_run", json=body, timeout=30)
    return str(created.raise_for_status().json()["id"])


def flow_runs(api: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The flow runs by id, as the API has them now."""
    body = {"flow_runs": {"id": {"any_": ids}}, "limit": 200}
    found = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).raise_for_status().json()
    return {run["id"]: run for run in found}


def wait_for_runs(api: str, ids: list[str], seconds: float = 300) -> dict[str, dict[str, Any]]:
    """The flow runs once every one has ended (completed, failed, crashed, cancelled); TimeoutError naming
    those still going after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        runs = flow_runs(api, ids)
        going = [run["name"] for run in runs.values() if run["state"]["type"] not in local.TERMINAL]
        if len(runs) == len(ids) and not going:
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"flow runs still going after {seconds:.0f} s: {', '.join(going)}")
        time.sleep(0.5)


def machines_of(api: str, ids: list[str], seconds: float = 60) -> dict[str, str]:
    """Which machine (worker name) took each flow run, from the workers' submitted-flow-run events; a run
    whose event has not reached the server within `seconds` is left out."""
    deadline, taken = time.monotonic() + seconds, dict[str, str]()
    wanted = {f"prefect.flow-run.{run_id}": run_id for run_id in ids}
    while len(taken) < len(ids) and time.monotonic() < deadline:
        body = {"filter": {"event": {"name": [SUBMITTED]}, "related": {"id": list(wanted)}}, "limit": 50}
        events = httpx.post(f"{api}/events/filter", json=body, timeout=30).raise_for_status().json()["events"]
        for event in events:
            for related in event["related"]:
                if related["prefect.resource.id"] in wanted:
                    taken[wanted[related["prefect.resource.id"]]] = event["resource"]["prefect.resource.name"]
        if len(taken) < len(ids):
            time.sleep(0.5)
    return taken
