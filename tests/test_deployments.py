"""prefect.yaml generated from the contracts: each client's import at its own time in its own timezone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import yaml

from deployments.generate import prefect_yaml, slot_deployments
from schemas.contract import load_contracts
from tests.conftest import EXAMPLE_CLIENTS, REPO
from tests.importing import make_contract

FIELDS = [{"name": "Email", "xml": "email", "type": "email", "required": True}]


def test_each_client_is_scheduled_at_its_time_in_its_timezone() -> None:
    from prefect.server.schemas.schedules import CronSchedule

    contracts = load_contracts(EXAMPLE_CLIENTS)
    document = yaml.safe_load(prefect_yaml(contracts))
    pull = [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $SFTP_IMPORT_CODE_DIR }}"}}]
    assert document["pull"] == pull  # no machine's path is baked into the committed file
    by_client = {
        client: d for d in document["deployments"] if "parameters" in d for client in d["parameters"]["clients"]
    }
    assert set(by_client) == set(contracts)
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    for client, contract in contracts.items():
        deployment = by_client[client]
        assert client in deployment["description"]
        (schedule,) = deployment["schedules"]
        assert schedule["timezone"] == contract.timezone
        cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        (first,) = asyncio.run(cron.get_dates(1, start=now))
        assert first == contract.next_cutoff(now)
    names = {d["name"] for d in document["deployments"]}
    assert {"hourly-sync", "retention", "backfill", "daily-import"} <= names


def test_clients_sharing_a_slot_share_a_deployment_split_in_shards() -> None:
    contracts = {f"c{i:03d}": make_contract(f"c{i:03d}", FIELDS) for i in range(250)}
    contracts["tokyo"] = make_contract("tokyo", FIELDS, timezone="Asia/Tokyo", import_time="07:30")
    slots = slot_deployments(contracts, shard_size=100)
    assert [(d["name"], len(d["parameters"]["clients"])) for d in slots] == [
        ("0600-europe-amsterdam-1", 100),
        ("0600-europe-amsterdam-2", 100),
        ("0600-europe-amsterdam-3", 50),
        ("0730-asia-tokyo-1", 1),
    ]
    assert slots[3]["schedules"] == [{"cron": "30 7 * * *", "timezone": "Asia/Tokyo", "active": True}]


def test_committed_prefect_yaml_matches_the_example_contracts() -> None:
    committed = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    expected = yaml.safe_load(prefect_yaml(load_contracts(EXAMPLE_CLIENTS)))
    assert committed == expected, "run `python -m deployments.generate --clients examples/clients`"
