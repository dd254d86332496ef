"""`make bench`: every line of issue 12 in one run, each ours against its reference, printed as a
Markdown table and written as JSON (bench/results/latest.json; BENCH_OUT for another path).

Sections, in order: import (bench/bench_import.py), sync (bench/bench_sync.py), cli
(bench/bench_cli.py); BENCH_ONLY=import,cli runs some of them. BENCH_RUNS sets the runs per line
(default 5; the steady hourly pass takes at most 3). The peak (1,000 clients due the same minute)
is `make bench-peak`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from bench import bench_cli, bench_import, bench_sync
from bench.measure import HEADER, RESULTS, Line, save

SECTIONS: dict[str, Callable[[], list[Line]]] = {
    "import": bench_import.lines,
    "sync": bench_sync.lines,
    "cli": bench_cli.lines,
}


def main() -> None:
    chosen = os.environ.get("BENCH_ONLY", ",".join(SECTIONS)).split(",")
    found: list[Line] = []
    for name in chosen:
        started = time.perf_counter()
        print(f"{name} ...", flush=True)
        lines = SECTIONS[name]()
        found.extend(lines)
        print(f"{name}: {time.perf_counter() - started:.0f} s\n{HEADER}")
        for line in lines:
            print(line.row(), flush=True)
    print(f"\nall lines\n{HEADER}")
    for line in found:
        print(line.row())
    path = save(found, Path(os.environ.get("BENCH_OUT", RESULTS)))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
