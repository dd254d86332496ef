"""The ops overview across clients: who needs attention and why, read from a real store at a pinned
time; the artifacts, run names and tags on the Prefect harness."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from tasks import store
from tasks.overview import ClientLine, overview_markdown, overview_rows, read_overview
from tasks.report import one_line, upload_rows
from tasks.store import Store
from tests.importing import CLIENTS, make_contract, record_arrival, stage_bytes
from tests.test_import_slot import _flow_run

NOW = datetime(2026, 12, 1, 6, 5, tzinfo=UTC)  # 07:05 CET
TODAY = NOW.replace(hour=3, minute=0)
YESTERDAY = NOW - timedelta(days=1)
FIELDS = [{"name": "Email", "xml": "email", "type": "email", "required": True}]
CONTRACTS = {
    cid: make_contract(cid, FIELDS, **extra)
    for cid, extra in {
        "acme": {},  # its last import failed, and it sent a rejected file today
        "globex": {},  # a file rejected today, one imported with few rows rejected
        "initech": {},  # 10 % of today's rows rejected
        "hooli": {"expected_every": "1d"},  # silent for 3 days
        "newco": {"expected_every": "7d"},  # never sent anything
        "quiet": {},  # nothing, and nothing agreed: all is well
        "steady": {"expected_every": "1d"},  # sent yesterday, imported today
    }.items()
}


def _arrive(con: Any, client: str, name: str, at: datetime, status: str = "staged", reason: str | None = None) -> None:
    record_arrival(con, client=client, name=name, status=status, size=1, mtime=at, received_at=at, reason=reason)


def _import(con: Any, client: str, name: str, at: datetime, run_id: str, read: int, rejected: int) -> None:
    stats = {"rows_read": read, "rows_imported": read - rejected, "rows_rejected": rejected}
    result = store.FileResult(client, name, store.FileStatus.IMPORTED, run_id, at, format="csv", stats=stats)
    store.record_file_result(con, result)


def _run(con: Any, client: str, run_id: str, at: datetime, state: str) -> None:
    store.record_run(con, store.Run(run_id, client, "daily", None, at), finished_at=at, state=state)


def _fill(con: Any) -> None:
    _arrive(con, "acme", "old.csv", YESTERDAY)
    _import(con, "acme", "old.csv", YESTERDAY, "acme-1", 5, 0)
    _run(con, "acme", "acme-1", YESTERDAY, "completed")
    _run(con, "acme", "acme-2", NOW - timedelta(hours=1), "failed")
    _arrive(con, "acme", "notes.pdf", TODAY, "rejected", "the extension .pdf is not accepted")
    _arrive(con, "globex", "older.txt", YESTERDAY, "rejected", "yesterday's: not counted today")
    _arrive(con, "globex", "bad.txt", TODAY, "rejected", "the extension .txt is not accepted")
    _arrive(con, "globex", "ok.csv", TODAY)
    _import(con, "globex", "ok.csv", TODAY, "globex-1", 100, 2)  # 2 %: below the share
    _run(con, "globex", "globex-1", TODAY, "completed")
    _arrive(con, "initech", "a.csv", TODAY)
    _import(con, "initech", "a.csv", TODAY, "initech-1", 100, 10)
    _arrive(con, "hooli", "last.csv", NOW - timedelta(days=3) + timedelta(hours=6))
    _arrive(con, "steady", "daily.csv", YESTERDAY.replace(hour=12))
    _import(con, "steady", "daily.csv", TODAY, "steady-1", 4, 0)
    _run(con, "steady", "steady-1", TODAY, "completed")


@pytest.fixture
def lines(backend: Store) -> list[ClientLine]:
    with backend.write() as con:
        _fill(con)
    with backend.read() as con:
        return read_overview(con, CONTRACTS, NOW)


def test_clients_needing_attention_come_first_each_with_its_reasons(lines: list[ClientLine]) -> None:
    assert [(line.contract.id, [kind for kind, _ in line.reasons]) for line in lines] == [
        ("acme", ["failed", "rejected"]),
        ("globex", ["rejected"]),
        ("initech", ["rows"]),
        ("hooli", ["silent"]),
        ("newco", ["silent"]),
        ("quiet", []),
        ("steady", []),
    ]
    first = {line.contract.id: line.reasons[0][1] for line in lines if line.reasons}
    assert first == {
        "acme": "last import failed at 2026-12-01 06:05 CET",
        "globex": "1 file rejected today; latest bad.txt: the extension .txt is not accepted",
        "initech": "10 of 100 rows rejected today (10.0%)",
        "hooli": "no upload since 2026-11-28 13:05 CET (expected every 1d)",
        "newco": "no upload yet (expected every 7d)",
    }


def test_today_counts_the_utc_day_of_now_only(lines: list[ClientLine]) -> None:
    figures = {line.contract.id: line.figures for line in lines}
    counted = ("received", "imported", "rejected", "rows_imported", "rows_rejected")
    assert {key: figures["globex"][key] for key in counted} == dict(zip(counted, (2, 1, 1, 98, 2), strict=True))
    assert {key: figures["steady"][key] for key in counted} == dict(zip(counted, (0, 1, 0, 4, 0), strict=True))
    assert {key: figures["acme"][key] for key in counted} == dict(zip(counted, (1, 0, 1, 0, 0), strict=True))
    assert figures["quiet"]["last_received_at"] is None and figures["quiet"]["last_import_at"] is None


def test_a_later_completed_run_clears_a_failed_one_and_a_flow_never_overwrites_a_run_row(backend: Store) -> None:
    with backend.write() as con:
        _run(con, "acme", "done", NOW - timedelta(hours=2), "completed")
        lost = [
            store.Run(run_id, "acme", "daily", None, NOW - timedelta(hours=1)) for run_id in ("done", "never-started")
        ]
        store.record_failed_runs(con, lost, NOW)
        assert read_overview(con, CONTRACTS, NOW)[0].reasons == (
            ("failed", "last import failed at 2026-12-01 07:05 CET"),
        )
        states = dict(con.execute("SELECT run_id, state FROM runs").fetchall())
        assert states == {"done": "completed", "never-started": "failed"}
        _run(con, "acme", "next", NOW + timedelta(hours=1), "completed")
        later = {line.contract.id: line for line in read_overview(con, CONTRACTS, NOW + timedelta(hours=1))}
        assert later["acme"].reasons == () and later["acme"].figures["last_import_state"] == "completed"


def test_table_rows_read_left_to_right_and_stop_at_the_limit(lines: list[ClientLine]) -> None:
    rows = overview_rows(lines, "http://ui", limit=4)
    assert list(rows[0]) == [
        "client", "attention", "received", "imported", "rejected", "rows_imported", "rows_rejected",
        "last_import", "next_import", "summary",
    ]  # fmt: skip
    assert rows[0]["attention"] == "last import failed at 2026-12-01 06:05 CET (+1 more)"
    assert rows[0]["last_import"] == "2026-12-01 06:05 CET failed"
    assert rows[0]["next_import"] == "2026-12-02 06:00 CET"
    assert rows[0]["summary"] == "[summary-acme](http://ui/artifacts/key/summary-acme)"
    assert len(rows[1]["attention"]) <= 60 and rows[1]["attention"].endswith("…")
    assert [row["client"] for row in rows] == ["acme", "globex", "initech", "hooli", "… 3 more"]
    assert rows[-1]["attention"] == "1 of them needs attention" and list(rows[-1]) == list(rows[0])
    json.dumps(rows)


def test_today_markdown_counts_the_platform_and_lists_who_needs_attention(lines: list[ClientLine]) -> None:
    text = overview_markdown(lines, NOW, "", limit=3)
    assert text.startswith("## Uploads today, 2026-12-01 (UTC)\n")
    assert (
        "**7 clients, 5 need attention**: 1 with a failed import, 2 with files rejected, "
        "1 with more than 5% of rows rejected, 2 silent for longer than agreed." in text
    )
    assert "Today: 4 files received, 3 imported, 2 rejected; 192 rows imported, 12 rejected." in text
    assert "- **[acme](/artifacts/key/summary-acme)**: last import failed at 2026-12-01 06:05 CET\n" in text
    assert "- **[initech](/artifacts/key/summary-initech)**: 10 of 100 rows rejected today (10.0%)\n" in text
    assert "- … and 2 more, first in [uploads-overview](/artifacts/key/uploads-overview)" in text
    assert "hooli" not in text  # past the limit


def test_expected_every_is_hours_days_or_weeks() -> None:
    intervals = {
        every: make_contract("x", FIELDS, expected_every=every).expected_interval for every in ("12h", "1d", "2w")
    }
    assert intervals == {"12h": timedelta(hours=12), "1d": timedelta(days=1), "2w": timedelta(days=14)}
    assert make_contract("x", FIELDS).expected_interval is None
    for wrong in ("0d", "1", "d", "1.5d", "1 d", "1m"):
        with pytest.raises(ValidationError, match="must be a whole number of hours, days or weeks"):
            make_contract("x", FIELDS, expected_every=wrong)


def test_uploads_table_reads_name_status_code_reason_received_then_figures() -> None:
    reason = "The XML has a DOCTYPE declaration; DTDs and entities are not accepted. Remove it."
    file = {"name": "bomb.xml", "status": "rejected", "code": "unsafe", "reason": reason, "received_at": NOW}
    (row,) = upload_rows([file])
    assert list(row)[:5] == ["name", "status", "code", "reason", "received"] and row["code"] == "unsafe"
    assert row["reason"] == "The XML has a DOCTYPE declaration; DTDs and entities are no…"
    assert one_line("first\nsecond") == "first …" and one_line(None) == ""


def test_failed_imports_are_the_runs_of_tasks_that_did_not_complete() -> None:
    from prefect.states import Completed, Failed, Pending

    states = {"a": Completed(), "b": Failed(message="boom"), "c": Pending(), "d": Failed()}
    for state in list(states.values())[:3]:
        state.state_details.task_run_id = uuid4()  # "d" never became a task run: nothing to record
    from flows.shared import failed_imports

    runs = failed_imports(states, "daily", {"b": NOW}, NOW)
    assert [(run.client, run.run_id, run.cutoff) for run in runs] == [
        ("b", str(states["b"].state_details.task_run_id), NOW),
        ("c", str(states["c"].state_details.task_run_id), None),
    ]


# --- on the Prefect harness ----------------------------------------------------------------------


def _artifact_data(key: str) -> Any:
    from prefect.artifacts import Artifact

    found = Artifact.get(key)
    assert found is not None, f"no artifact {key}"
    return json.loads(found.data) if isinstance(found.data, str) and found.type == "table" else found.data


@pytest.mark.usefixtures("prefect_harness")
def test_an_import_run_named_and_tagged_like_a_deployment_run_publishes_the_overview(home: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.daily_import import daily_import
    from tasks.settings import load_settings

    stage_bytes(load_settings(), "contoso", "gone.csv", b"x")
    (Path(load_settings().staging_url) / "contoso" / "gone.csv").unlink()  # its import fails
    parameters = {"client": "contoso", "scheduled_for": datetime(2026, 12, 1, 12, 30, tzinfo=UTC), "now": True}
    with get_client(sync_client=True) as api:  # as a deployment creates it: with the deployment's tags
        created = api.create_flow_run(daily_import, parameters=parameters, tags=["daily-import"])
    state: Any = run_flow(daily_import, flow_run=created, parameters=parameters, return_type="state")

    assert state.is_failed()
    run = _flow_run(created.id)
    assert run.name == "import-contoso-2026-12-01"  # the client's local day of the scheduled time
    assert set(run.tags) == {"daily-import", "kind:import", "client:contoso"}
    rows = _artifact_data("uploads-overview")
    assert rows[0]["client"] == "contoso" and rows[0]["attention"].startswith("last import failed at ")
    assert rows[0]["last_import"].endswith(" failed")
    assert {row["client"] for row in rows} == set(CLIENTS)
    today = _artifact_data("overview-today")
    assert "## Uploads today, " in today and "- **[contoso](" in today


@pytest.mark.usefixtures("prefect_harness")
def test_sync_run_is_named_for_its_time_and_tagged_then_updates_the_overview(asyncssh_target: Any) -> None:
    from prefect.artifacts import Artifact
    from prefect.states import State

    from flows.hourly_sync import hourly_sync

    asyncssh_target.client_dir("northwind")  # an empty folder: a quiet hour still updates the overview
    state: State[Any] = hourly_sync(client="northwind", return_state=True)  # type: ignore[call-overload]
    assert state.is_completed(), state.message
    run = _flow_run(state.state_details.flow_run_id)
    assert run.name == f"sync-northwind-{run.expected_start_time.astimezone(UTC):%Y-%m-%d-%H%M}"
    assert set(run.tags) == {"kind:sync", "client:northwind"}
    published = Artifact.get("uploads-overview")
    assert published is not None and published.flow_run_id == run.id  # this run updated it
    assert [row["client"] for row in _artifact_data("uploads-overview")] == ["fabrikam", "northwind", "contoso"]
