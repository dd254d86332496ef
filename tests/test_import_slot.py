"""The `import-slot` flow on the Prefect harness: one task per client with files, failures named at the end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tasks.settings import load_settings
from tests.importing import CLIENTS, contacts, ledger, stage_bytes, stage_records

NORTHWIND = CLIENTS["northwind"]
RECEIVED = datetime.now(UTC) - timedelta(days=3)


def _flow_run(flow_run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_flow_run(flow_run_id)

    return asyncio.run(read())


def _task_runs(flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> list[Any]:
        async with get_client() as client:
            flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            return list(await client.read_task_runs(flow_run_filter=flow_runs))

    return asyncio.run(read())


@pytest.mark.usefixtures("prefect_harness")
def test_slot_imports_clients_with_files_and_names_the_failed(home: Path) -> None:
    from prefect.artifacts import Artifact

    from flows.import_slot import import_slot

    settings = load_settings()
    values: dict[str, object] = {f.id: None for f in NORTHWIND.fields}
    good = [values | {"email": "a@x.com", "first_name": "Ann", "amount": Decimal("1.5")}]
    stage_records(settings, NORTHWIND, "monday.csv", good, RECEIVED)
    stage_bytes(settings, "contoso", "gone.csv", b"x", RECEIVED)
    (Path(settings.staging_url) / "contoso" / "gone.csv").unlink()  # staged in the ledger, copy lost: an error

    state = import_slot(slot="0600-test-1", clients=["northwind", "contoso", "fabrikam", "nobody"], return_state=True)

    assert state.is_failed()
    assert state.message == "2 of 4 client(s) failed: nobody, contoso"
    summary = state.result(raise_on_failure=False)  # the failed run keeps the slot's summary
    assert (summary["imported"], summary["idle"], sorted(summary["failed"])) == (1, 1, ["contoso", "nobody"])
    assert ledger(settings, "northwind")["monday.csv"]["status"] == "imported"
    assert ledger(settings, "contoso")["gone.csv"]["status"] == "staged"
    assert [c["email"] for c in contacts(settings, NORTHWIND)] == ["a@x.com"]

    runs = {run.name: run for run in _task_runs(state.state_details.flow_run_id)}
    scheduled = _flow_run(state.state_details.flow_run_id).expected_start_time  # each task is named by its local day
    expected = {f"import-{c.id}-{scheduled.astimezone(c.zone).date()}" for c in (NORTHWIND, CLIENTS["contoso"])}
    assert expected <= set(runs)  # nothing due: no task for fabrikam
    assert "client:northwind" in runs[f"import-northwind-{scheduled.astimezone(NORTHWIND.zone).date()}"].tags
    assert not any("fabrikam" in name for name in runs)

    uploads = Artifact.get("uploads-northwind")
    assert uploads is not None and "monday.csv" in str(uploads.data)
    summary = Artifact.get("slot-0600-test-1")
    assert summary is not None
    assert "4 client(s): 1 imported, 1 with nothing due, 2 failed." in str(summary.data)
    assert "- Nothing due: fabrikam" in str(summary.data)
    progress = Artifact.get("import-progress-slot-0600-test-1")
    assert progress is not None and "2 of 2 client(s) done" in str(progress.description)
