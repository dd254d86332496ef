"""Prepare a Prefect server for the platform: `python -m deployments.setup [prune]`. Idempotent.

`setup` creates the process work pool (the store needs no Prefect limit: its writers take a file
lock beside the DuckDB file, see tasks/writer_lock.py) and the alerts: a webhook notification block
(`sftp-import-alerts`, the URL of SFTP_IMPORT_ALERT_WEBHOOK_URL kept as a secret value) and one
automation per alert event (tasks/alerts.py) whose action posts it there, created or updated by
name. `prune` deletes `import-slot` deployments that prefect.yaml no longer has (a client moved to
another time, or left), so no stale schedule runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import yaml

from deployments.generate import POOL, REPO
from tasks import alerts
from tasks.settings import load_settings

SLOT_FLOW = "import-slot"
ALERT_BLOCK = "sftp-import-alerts"
# automation name and notification subject per alert event; the body is the event's one-line message
ALERT_AUTOMATIONS = {
    alerts.FILE_REJECTED: ("sftp-import: file rejected", "File rejected: {{ event.payload.client }}"),
    alerts.ROWS_REJECTED: ("sftp-import: rows rejected", "Many rows rejected: {{ event.payload.client }}"),
    alerts.RUN_FAILED: ("sftp-import: client run failed", "Run failed: {{ event.payload.client }}"),
}
ALERT_BODY = "{{ event.payload.message }}"


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
            existing = await client.read_automations_by_name(name)
            for extra in existing[1:]:  # a name is one automation: a duplicate would alert twice
                await client.delete_automation(extra.id)
            if existing:
                await client.update_automation(existing[0].id, automation)
                done[name] = "updated"
            else:
                await client.create_automation(automation)
                done[name] = "created"
    return done


async def setup() -> None:
    """The work pool, created only when missing; the alerts when a webhook URL is set."""
    created = await ensure_pool()
    print(f"work pool {POOL!r} {'created' if created else 'exists'}")
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
