"""`make demo`, the README's first command, passes on a busy machine: two CPU burners run beside it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployments import server
from tests.conftest import REPO

BURN = "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\nwhile time.monotonic() < end: pass"


@pytest.mark.slow
def test_make_demo_passes_beside_two_cpu_burners(tmp_path: Path) -> None:
    port = server.free_port()
    # as a user types it: no Prefect or platform settings, and not a sub-make of `make test` (whose
    # "make[1]: Leaving directory" would be the last line)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SFTP_IMPORT_", "MAKE", "MFLAGS"))}
    env |= {"SFTP_IMPORT_DEMO_DIR": str(tmp_path / "demo"), "SFTP_IMPORT_PREFECT_PORT": str(port)}
    burners = [subprocess.Popen([sys.executable, "-c", BURN, "600"]) for _ in range(2)]  # bounded, and killed below
    try:
        done = subprocess.run(["make", "demo"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
        server.stop(tmp_path / "demo" / "home")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "northwind  (next import" in out and "northwind-with-bad-rows.csv  imported" in out
    assert "northwind-bomb.xml           rejected" in out
    ui, last = f"http://127.0.0.1:{port}", out.rstrip().splitlines()[-3:]
    assert last[0].startswith(f"The Prefect UI with these runs and artifacts: {ui}")
    assert last[1].endswith(f"{ui}/artifacts/key/uploads-overview")  # the demo ends pointing to the ops overview
    assert last[2].endswith(f"{ui}/artifacts/key/overview-today")
    assert "## Uploads today, " in out and "- **[northwind](" in out
