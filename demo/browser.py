"""The Prefect UI as a person sees it: Debian's Chromium driven by Playwright.

Never a browser of Playwright's own (`playwright install` downloads one, and this machine reaches
no host that serves it): Debian's `chromium` package at /usr/bin/chromium, which `.ci/run` installs.
Used by the browser test, `make screenshots` and `bench/bench_ui.py`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (  # what works here: no sandbox (root), no GPU, nothing that calls home
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SETTLE_MS = 700  # after the network is idle, the UI still lays out what it fetched
TIMEOUT_MS = 120_000  # a busy 2-core machine


@contextmanager
def chromium_page(width: int = 1500, height: int = 1000) -> Iterator[Page]:
    """A page of a headless Debian Chromium, `width` x `height` pixels, closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(FLAGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def open_artifact(page: Page, ui: str, key: str, shown: str | None = None) -> float:
    """Open the artifact key's page, then its newest version as ops do; seconds that version's page took.

    The key's page (`/artifacts/key/<key>`) lists the versions; the content is on the version's own
    page. The time runs from asking for that page until `shown` (a text of it) is on it, or until
    the network is idle when no text is given."""
    page.goto(f"{ui}/artifacts/key/{key}")
    newest = page.locator('a[href^="/artifacts/artifact/"]').first
    newest.wait_for()
    started = time.perf_counter()
    page.goto(ui + str(newest.get_attribute("href")))
    if shown is not None:
        page.get_by_text(shown, exact=True).first.wait_for()
    else:
        page.wait_for_load_state("networkidle")
    elapsed = time.perf_counter() - started
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(SETTLE_MS)
    return elapsed
