"""The ops screen in a real browser: the demo on its resident Prefect server, the UI's artifact pages
opened in Debian's Chromium (Playwright), their rows and texts checked, screenshots kept in tmp_path.

Skipped when Chromium or Playwright is missing, unless SFTP_IMPORT_REQUIRE_CHROMIUM is set (CI):
then it fails."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from demo.browser import CHROMIUM, chromium_page, open_artifact
from deployments import server
from tests.conftest import REPO


def _require_chromium() -> None:
    missing = [
        what for what, there in ((str(CHROMIUM), CHROMIUM.exists()), ("playwright", _has_playwright())) if not there
    ]
    if not missing:
        return
    if os.environ.get("SFTP_IMPORT_REQUIRE_CHROMIUM"):
        pytest.fail(
            f"{' and '.join(missing)} missing but SFTP_IMPORT_REQUIRE_CHROMIUM is set (CI must run the UI test)"
        )
    pytest.skip(f"{' and '.join(missing)} missing (set SFTP_IMPORT_REQUIRE_CHROMIUM=1 to make this an error)")


def _has_playwright() -> bool:
    return importlib.util.find_spec("playwright") is not None


@pytest.mark.slow
def test_overview_and_a_client_summary_render_in_the_prefect_ui(tmp_path: Path) -> None:
    _require_chromium()
    demo_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SFTP_IMPORT_"))}
    env |= {"SFTP_IMPORT_DEMO_DIR": str(demo_dir), "SFTP_IMPORT_PREFECT_PORT": str(server.free_port())}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "demo.run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        running = server.running(demo_dir / "home")
        assert running is not None
        assert done.stdout.rstrip().splitlines()[-2].endswith(f"{running.ui}/artifacts/key/uploads-overview")

        with chromium_page() as page:
            open_artifact(page, running.ui, "uploads-overview")
            page.screenshot(path=str(tmp_path / "uploads-overview.png"), full_page=True)
            headers = page.locator("th").all_inner_texts()
            assert [h.strip() for h in headers[:5]] == ["client", "attention", "received", "imported", "rejected"]
            rows = [row.split("\t") for row in page.locator("tbody tr").all_inner_texts()]
            assert [row[0].strip() for row in rows] == ["contoso", "northwind", "fabrikam"]  # attention first
            assert rows[1][1].strip().startswith("2 files rejected today; latest northwind-")
            assert page.locator('a[href$="/artifacts/key/summary-northwind"]').count() == 1

            open_artifact(page, running.ui, "overview-today")
            page.screenshot(path=str(tmp_path / "overview-today.png"), full_page=True)
            text = page.inner_text("body")
            assert "Uploads today, " in text and "(UTC)" in text
            assert "3 clients, 2 need attention" in text and "Needs attention" in text
            assert page.get_by_role("link", name="northwind", exact=True).count() == 1

            open_artifact(page, running.ui, "summary-northwind")
            page.screenshot(path=str(tmp_path / "summary-northwind.png"), full_page=True)
            text = page.inner_text("body")
            assert "Northwind Traders (northwind): uploads" in text and "Needs attention" in text
            assert "northwind-bomb.xml: rejected: The XML has a DOCTYPE declaration" in text

            open_artifact(page, running.ui, "uploads-northwind")
            page.screenshot(path=str(tmp_path / "uploads-northwind.png"), full_page=True)
            headers = [h.strip() for h in page.locator("th").all_inner_texts()]
            assert headers[:5] == ["name", "status", "code", "reason", "received"]  # reads left to right
            assert page.get_by_text("northwind-bomb.xml", exact=True).count() == 1
    finally:
        server.stop(demo_dir / "home")
    assert {path.name for path in tmp_path.glob("*.png")} == {
        "uploads-overview.png",
        "overview-today.png",
        "summary-northwind.png",
        "uploads-northwind.png",
    }
