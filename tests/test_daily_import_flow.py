"""The `daily-import` flow on the Prefect harness: the cut-off decides, a second run imports nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.contract import load_contracts
from tasks.settings import load_settings
from tasks.store import Store
from tests.conftest import EXAMPLE_CLIENTS
from tests.importing import contacts, ledger, stage_records

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL

NORTHWIND = load_contracts(EXAMPLE_CLIENTS)["northwind"]
# 2026-11-28 06:00 Europe/Amsterdam (CET, UTC+1) is 05:00 UTC
CUTOFF = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


def record(email: str, first_name: str | None, amount: str | None = None) -> dict[str, object]:
    values: dict[str, object] = {f.id: None for f in NORTHWIND.fields}
    return values | {"email": email, "first_name": first_name, "amount": Decimal(amount) if amount else None}


@pytest.fixture
def staged(backend: Store) -> None:
    settings = load_settings()
    stage_records(settings, NORTHWIND, "monday.csv", [record("a@x.com", "Ann", "1.5")], CUTOFF - timedelta(hours=30))
    stage_records(
        settings,
        NORTHWIND,
        "friday.xml",
        [record("A@X.com", None, "2"), record("b@x.com", "Bob")],
        CUTOFF - timedelta(seconds=1),
    )
    stage_records(settings, NORTHWIND, "late.csv", [record("c@x.com", "Cy")], CUTOFF + timedelta(seconds=1))


@pytest.mark.usefixtures("prefect_harness", "staged")
def test_files_before_the_cutoff_imported_once() -> None:
    from prefect.client.orchestration import get_client

    from flows.daily_import import daily_import

    state = daily_import(client="northwind", scheduled_for=CUTOFF + timedelta(minutes=3), return_state=True)
    summary = state.result()
    assert [f["name"] for f in summary["files"]] == ["monday.csv", "friday.xml"]
    assert summary["totals"]["files_imported"] == 2
    assert summary["totals"]["new_contacts"] == 2 and summary["totals"]["updated_contacts"] == 1

    async def name() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(state.state_details.flow_run_id)).name

    import asyncio

    assert asyncio.run(name()) == "import-northwind-2026-11-28"
    settings = load_settings()
    assert {c["email"]: (c["first_name"], c["amount"]) for c in contacts(settings, NORTHWIND)} == {
        "A@X.com": ("Ann", Decimal("2")),
        "b@x.com": ("Bob", None),
    }
    files = ledger(settings, "northwind")
    assert files["late.csv"]["status"] == "staged"
    assert files["friday.xml"]["format"] == "xml" and files["friday.xml"]["updated_contacts"] == 1

    again = daily_import(client="northwind", scheduled_for=CUTOFF + timedelta(hours=2))
    assert again["files"] == [] and again["totals"]["files_imported"] == 0
    with settings.store.read() as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


@pytest.mark.usefixtures("prefect_harness", "staged")
def test_now_imports_everything_received_so_far() -> None:
    from flows.daily_import import daily_import

    summary = daily_import(client="northwind", now=True)
    assert [f["name"] for f in summary["files"]] == ["monday.csv", "friday.xml", "late.csv"]
    assert summary["cutoff"] is None
    assert {c["email"] for c in contacts(load_settings(), NORTHWIND)} == {"A@X.com", "b@x.com", "c@x.com"}


@pytest.mark.usefixtures("prefect_harness", "staged")
def test_cli_import_now(capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import main

    assert main(["import", "--client", "northwind", "--now"]) == 0
    out = capsys.readouterr().out
    assert "late.csv: imported" in out and "northwind: files_imported 3" in out
