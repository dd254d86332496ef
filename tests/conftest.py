"""Shared fixtures: the Prefect test harness (one per session), settings on temp folders."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from deployments.postgres import Cluster
    from tasks.store import Store

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


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A PostgreSQL cluster of the tests' own from Debian's binaries, started once (~1 s), fsync off.

    Skipped when PostgreSQL is missing, unless SFTP_IMPORT_REQUIRE_POSTGRES is set (CI): then it fails."""
    from deployments.postgres import PostgresMissing, bin_dir, postgres_cluster

    try:
        bin_dir()
    except PostgresMissing as exc:
        if os.environ.get("SFTP_IMPORT_REQUIRE_POSTGRES"):
            pytest.fail(f"{exc}, but SFTP_IMPORT_REQUIRE_POSTGRES is set (CI must run the PostgreSQL tests)")
        pytest.skip(f"{exc} (set SFTP_IMPORT_REQUIRE_POSTGRES=1 to make this an error)")
    with postgres_cluster(durable=False) as cluster:
        yield cluster


_databases = itertools.count()


@pytest.fixture(params=["duckdb", "postgresql"])
def backend(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The test's store on each backend in turn: the embedded DuckDB file under the home, then a new
    database of the tests' PostgreSQL cluster (`SFTP_IMPORT_STORE_URL`, so every process of the test uses it)."""
    from deployments.postgres import create_database
    from tasks.settings import load_settings
    from tasks.store import close_store

    if request.param == "postgresql":
        url = create_database(request.getfixturevalue("postgres"), f"test{os.getpid()}_{next(_databases)}")
        monkeypatch.setenv("SFTP_IMPORT_STORE_URL", url)
    settings = load_settings()
    yield settings.store
    close_store(settings.store_url)
