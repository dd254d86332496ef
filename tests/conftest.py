"""Shared fixtures: the Prefect test harness (one per session), settings on temp folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["tests.sftp_fixtures", "tests.sftp_faults"]

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# CI explores the same examples every run (a failure there is reproducible); elsewhere they vary
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXAMPLE_CLIENTS = REPO / "examples" / "clients"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real Prefect API for flow tests, started once (~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SFTP_IMPORT_HOME and the contracts folder pointed at a fresh temp folder and the example contracts."""
    monkeypatch.setenv("SFTP_IMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SFTP_IMPORT_CLIENTS_DIR", str(EXAMPLE_CLIENTS))
    return tmp_path / "home"
