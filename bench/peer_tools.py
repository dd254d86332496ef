"""The benchmark's peers, run by the interpreter of their own virtual environment (bench/peers.py makes it).

Imports nothing of the project: dlt, pyarrow and xlwt live only in that environment. Commands
(each prints one JSON object; seconds and peak memory are the command's own):
  dlt SEED_CSV FILE_CSV DELIMITER DB   load SEED_CSV (untimed), then merge FILE_CSV: dlt's fastest path,
                                       an Arrow table, write_disposition="merge", primary_key email, DuckDB
  xls CSV DELIMITER OUT                a CSV's cells as text cells of an XLS workbook (nothing else writes XLS)"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def peak_mb() -> float:
    """This process's peak resident memory in MB: VmHWM, which exec starts afresh (ru_maxrss of a child
    starts from its parent's size at the fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _arrow(path: str, delimiter: str) -> Any:
    """A CSV as an Arrow table, pyarrow's types inferred."""
    from pyarrow import csv

    return csv.read_csv(path, parse_options=csv.ParseOptions(delimiter=delimiter))


def dlt_merge(seed: str, file: str, delimiter: str, db: str) -> dict[str, float]:
    """Seed the table with dlt (untimed), then time reading the file to Arrow and merging it by email."""
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt

    pipeline = dlt.pipeline(
        pipeline_name="bench",
        destination=dlt.destinations.duckdb(db),
        dataset_name="bench",
        pipelines_dir=str(Path(db).parent / "pipelines"),
    )
    options: dict[str, Any] = {"table_name": "contacts", "write_disposition": "merge", "primary_key": "email"}
    pipeline.run(_arrow(seed, delimiter), **options)
    started = time.perf_counter()
    pipeline.run(_arrow(file, delimiter), **options)
    return {"seconds": time.perf_counter() - started}


def xls(csv_path: str, delimiter: str, out: str) -> dict[str, float]:
    """Write the CSV's rows as an XLS sheet of text cells."""
    import csv

    import xlwt

    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Contacts")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for r, row in enumerate(csv.reader(handle, delimiter=delimiter)):
            for c, value in enumerate(row):
                sheet.write(r, c, value)
    workbook.save(out)
    return {"seconds": 0.0}


def main(argv: list[str]) -> None:
    command, *args = argv
    result = {"dlt": dlt_merge, "xls": xls}[command](*args)
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
