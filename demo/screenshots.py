"""`make screenshots`: the README's pictures of the ops screen, taken from the demo (`make demo`, run
first by make) on its resident Prefect server, in Debian's Chromium: `docs/overview.png`."""

from __future__ import annotations

import sys
from pathlib import Path

from demo.browser import chromium_page, open_artifact
from demo.run import DEMO, REPO
from deployments import server
from tasks.overview import OVERVIEW_KEY

SHOTS = {OVERVIEW_KEY: REPO / "docs" / "overview.png"}
WIDTH, HEIGHT = 1500, 620  # the table with the sidebar, as a 1,500-pixel-wide window shows it


def take(ui: str, shots: dict[str, Path]) -> None:
    """Open each artifact key's newest version and save what the window shows as a PNG."""
    with chromium_page(WIDTH, HEIGHT) as page:
        for key, path in shots.items():
            open_artifact(page, ui, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path))
            print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size // 1024} KB): {key}")


def main() -> int:
    running = server.running(DEMO / "home")
    if running is None or not server.healthy(running.url):
        print("the demo's Prefect server is not running: run `make demo` first", file=sys.stderr)
        return 1
    take(running.ui, SHOTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
