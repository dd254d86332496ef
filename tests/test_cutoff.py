"""The cut-off: files received before the client's import time (its own timezone) are due, later ones
wait a day; across daylight-saving changes no day is skipped and none is doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from schemas.contract import Contract, load_contracts
from tasks import store
from tasks.settings import load_settings
from tests.conftest import EXAMPLE_CLIENTS
from tests.importing import import_file, ledger, make_contract, stage_bytes

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL

CONTRACTS = load_contracts(EXAMPLE_CLIENTS)
SECOND = timedelta(seconds=1)

CASES = [
    # contract, run's scheduled time (UTC), expected cut-off (UTC)
    ("northwind", datetime(2026, 3, 28, 5, 0, tzinfo=UTC), datetime(2026, 3, 28, 5, 0, tzinfo=UTC)),  # CET
    ("northwind", datetime(2026, 3, 29, 4, 0, tzinfo=UTC), datetime(2026, 3, 29, 4, 0, tzinfo=UTC)),  # spring: CEST
    ("northwind", datetime(2026, 10, 25, 5, 0, tzinfo=UTC), datetime(2026, 10, 25, 5, 0, tzinfo=UTC)),  # autumn: CET
    ("contoso", datetime(2026, 3, 8, 11, 30, tzinfo=UTC), datetime(2026, 3, 8, 11, 30, tzinfo=UTC)),  # spring: EDT
    ("contoso", datetime(2026, 11, 1, 12, 30, tzinfo=UTC), datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),  # autumn: EST
    (
        "contoso",
        datetime(2026, 11, 1, 12, 29, tzinfo=UTC),
        datetime(2026, 10, 31, 11, 30, tzinfo=UTC),
    ),  # a minute early
]


def _due(contract: Contract, cutoff: datetime | None) -> list[str]:
    with load_settings().store.write() as con:
        return store.staged_files(con, contract.id, cutoff)


@pytest.mark.parametrize(("client", "scheduled", "cutoff"), CASES)
def test_files_just_before_the_cutoff_are_due_and_just_after_wait(
    home: Path, client: str, scheduled: datetime, cutoff: datetime
) -> None:
    contract = CONTRACTS[client]
    assert contract.last_cutoff(scheduled) == cutoff
    settings = load_settings()
    stage_bytes(settings, client, "after.csv", b"x", cutoff)
    stage_bytes(settings, client, "before.csv", b"x", cutoff - SECOND)
    stage_bytes(settings, client, "earlier.csv", b"x", cutoff - timedelta(days=3))
    stage_bytes(settings, "fabrikam", "other-client.csv", b"x", cutoff - timedelta(days=3))
    assert _due(contract, contract.last_cutoff(scheduled)) == ["earlier.csv", "before.csv"]
    assert _due(contract, contract.next_cutoff(cutoff)) == ["earlier.csv", "before.csv", "after.csv"]
    assert _due(contract, None) == ["earlier.csv", "before.csv", "after.csv"]


@pytest.mark.parametrize(
    ("timezone", "import_time", "first_day"),
    [
        ("Europe/Amsterdam", "06:00", datetime(2026, 3, 27, tzinfo=UTC)),  # spring forward 29 March
        ("Europe/Amsterdam", "02:30", datetime(2026, 3, 27, tzinfo=UTC)),  # import time inside the gap
        ("Europe/Amsterdam", "02:30", datetime(2026, 10, 23, tzinfo=UTC)),  # import time happens twice
        ("America/New_York", "07:30", datetime(2026, 10, 30, tzinfo=UTC)),  # fall back 1 November
    ],
)
def test_daily_runs_across_a_dst_change_import_every_file_once(
    home: Path, timezone: str, import_time: str, first_day: datetime
) -> None:
    contract = make_contract(
        "dst",
        [{"name": "Email", "xml": "email", "type": "email", "required": True}],
        timezone=timezone,
        import_time=import_time,
    )
    settings = load_settings()
    csv = b"Email\na@x.com\n"
    arrivals = [first_day + timedelta(minutes=290 * i) for i in range(5 * 24 * 60 // 290)]
    for i, received in enumerate(arrivals):
        stage_bytes(settings, "dst", f"f{i:03}.csv", csv, received)
    runs = [contract.cutoff_on((first_day + timedelta(days=d)).date()) for d in range(1, 6)]
    assert len({run.astimezone(UTC) for run in runs}) == 5
    assert all(
        timedelta(hours=23) <= b - a <= timedelta(hours=25) for a, b in pairwise(r.astimezone(UTC) for r in runs)
    )
    imported_by: dict[str, datetime] = {}
    for scheduled in runs:
        cutoff = contract.last_cutoff(scheduled + timedelta(minutes=1))
        assert cutoff == scheduled
        for name in _due(contract, cutoff):
            assert import_file(settings, contract, name, str(scheduled)).status == "imported"
            imported_by[name] = cutoff
    files = ledger(settings, "dst")
    for i, received in enumerate(arrivals):
        name = f"f{i:03}.csv"
        window = [cut for cut in runs if received < cut]
        if window:
            assert imported_by[name] == window[0], name  # the first run after it arrived, exactly once
            assert files[name]["status"] == "imported"
        else:
            assert files[name]["status"] == "staged"
