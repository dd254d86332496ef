"""Prepare a Prefect server for the platform: `python -m deployments.setup [prune]`. Idempotent.

`setup` creates the process work pool (the store needs no Prefect limit: its writers take a file
lock beside the DuckDB file, see tasks/writer_lock.py), the automation that marks a silent flow run
crashed (its machine died: nothing else tells Prefect), and the alerts: a webhook notification block
(`sftp-import-alerts`, the URL of SFTP_IMPORT_ALERT_WEBHOOK_URL kept as a secret value) and one
automation per alert event (tasks/alerts.py) whose action posts it there. Automations are created
or updated by name. `prune` deletes `import-slot` deployments that prefect.yaml no longer has (a client moved to
another time, or left), so no stale schedule runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from deployments.generate import POOL, REPO
from tasks import alerts
from tasks.settings import load_settings

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

SLOT_FLOW = "import-slot"
ALERT_BLOCK = "sftp-import-alerts"
# automation name and notification subject per alert event; the body is the event's one-line message
ALERT_AUTOMATIONS = {
    alerts.FILE_REJECTED: ("sftp-import: file rejected", "File rejected: {{ event.payload.client }}"),
    alerts.ROWS_REJECTED: ("sftp-import: rows rejected", "Many rows rejected: {{ event.payload.client }}"),
    alerts.RUN_FAILED: ("sftp-import: client run failed", "Run failed: {{ event.payload.client }}"),
}
ALERT_BODY = "{{ event.payload.message }}"
SILENT_RUNS = "sftp-import: silent runs crashed"
SILENT_BEATS = 3  # heartbeats a running flow run may miss before it is marked crashed
RUN_ENDS = ("Completed", "Failed", "Cancelled", "Crashed")


async def ensure_pool(name: str = POOL) -> bool:
    """Create the process work pool if it is missing; True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            await client.read_work_pool(name)
            return False
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            await client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
            return True


async def _save_automation(client: Any, automation: AutomationCore) -> str:
    """Create the automation, or update the one of its name (a duplicate is deleted: it would act twice)."""
    existing = await client.read_automations_by_name(automation.name)
    for extra in existing[1:]:
        await client.delete_automation(extra.id)
    if existing:
        await client.update_automation(existing[0].id, automation)
        return "updated"
    await client.create_automation(automation)
    return "created"


async def ensure_silent_runs_crashed() -> str | None:
    """The automation that marks a flow run Crashed once it sent no heartbeat for SILENT_BEATS heartbeats
    of PREFECT_FLOWS_HEARTBEAT_FREQUENCY (the workers' must be the same) and did not end: its machine
    died. Ops then see it crashed, not running for ever. None when heartbeats are off."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.settings import get_current_settings

    frequency = get_current_settings().flows.heartbeat_frequency
    if frequency is None:
        return None
    silent = frequency * SILENT_BEATS
    automation = AutomationCore(
        name=SILENT_RUNS,
        description=f"A flow run silent {silent} s (no heartbeat, no end) is marked crashed (deployments/setup.py).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{end}" for end in RUN_ENDS)},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silent),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"No heartbeat for {silent} s: the machine running it stopped. The next run takes up "
                "its work (an import's files not committed stay staged; its run is closed from the ledger).",
            )
        ],
    )
    async with get_client() as client:
        return await _save_automation(client, automation)


async def ensure_alerts(webhook_url: str) -> dict[str, str]:
    """The webhook block (saved over) and the alert automations, created or updated: {automation: what was done}."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    block = CustomWebhookNotificationBlock(
        name=ALERT_BLOCK,
        url="{{ webhook_url }}",
        json_data={"subject": "{{ subject }}", "body": "{{ body }}"},
        secrets={"webhook_url": webhook_url},  # a webhook URL often holds its token: not shown in the UI
    )
    block_id = await block.asave(ALERT_BLOCK, overwrite=True)
    done = {}
    async with get_client() as client:
        for event, (name, subject) in ALERT_AUTOMATIONS.items():
            automation = AutomationCore(
                name=name,
                description=f"Posts every {event} event to the {ALERT_BLOCK} webhook (deployments/setup.py).",
                trigger=EventTrigger(expect={event}, posture=Posture.Reactive, threshold=1),
                actions=[SendNotification(block_document_id=block_id, subject=subject, body=ALERT_BODY)],
            )
            done[name] = await _save_automation(client, automation)
    return done


async def setup() -> None:
    """The work pool, created only when missing; the silent runs' automation; the alerts when a webhook URL is set."""
    created = await ensure_pool()
    print(f"work pool {POOL!r} {'created' if created else 'exists'}")
    silent = await ensure_silent_runs_crashed()
    print(
        f"automation {SILENT_RUNS!r} {silent}" if silent else "heartbeats are off: silent runs are not marked crashed"
    )
    url = load_settings().alert_webhook_url
    if url is None:
        print("alerts: SFTP_IMPORT_ALERT_WEBHOOK_URL is not set; no alert automations created or changed")
        return
    for name, what in (await ensure_alerts(url)).items():
        print(f"automation {name!r} {what}")


async def prune(prefect_file: Path) -> list[str]:
    """Delete the `import-slot` deployments not in `prefect_file`; returns their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    wanted = {d["name"] for d in yaml.safe_load(prefect_file.read_text(encoding="utf-8"))["deployments"]}
    removed = []
    async with get_client() as client:
        deployments = await client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[SLOT_FLOW])))
        for deployment in deployments:
            if deployment.name not in wanted:
                await client.delete_deployment(deployment.id)
                removed.append(deployment.name)
    print(f"pruned {len(removed)} stale {SLOT_FLOW} deployment(s){': ' + ', '.join(removed) if removed else ''}")
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.setup", description=__doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", choices=["setup", "prune"], default="setup")
    parser.add_argument("--prefect-file", type=Path, default=REPO / "prefect.yaml")
    args = parser.parse_args(argv)
    if args.action == "prune":
        asyncio.run(prune(args.prefect_file))
    else:
        asyncio.run(setup())
    return 0


if __name__ == "__main__":
    sys.exit(main())
