"""Read + validate a generated 5,000-row file of each format through parse_file; print the time per format.

Also times the two candidate XLSX readers on the same workbook (raw cell reading only), the
numbers behind the choice of python-calamine in tasks/formats/excel.py. Run: .venv/bin/python bench/bench_readers.py"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path

from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from schemas.contract import load_contracts
from schemas.samples import Record, write_rows
from tasks.formats import writable
from tasks.validate import parse_file

ROWS = 5000
CONTRACT = load_contracts(Path(__file__).parents[1] / "examples" / "clients")["northwind"]


def records() -> list[Record]:
    """5,000 valid northwind contacts."""
    segments = CONTRACT.fields[-1].values or ()
    return [
        {
            "email": f"contact{i}@example.com",
            "first_name": f"First{i}",
            "last_name": f"Last {i}",
            "account_id": f"{i:08d}",
            "purchase_date": date(2020, 1, 1 + i % 28),
            "amount": Decimal(i) / 100,
            "segment": segments[i % len(segments)],
        }
        for i in range(ROWS)
    ]


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of a few runs, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def as_xls(xlsx: bytes) -> bytes | None:
    """The workbook converted to XLS by LibreOffice, when it is installed (nothing else writes XLS)."""
    soffice = shutil.which("soffice")
    if soffice is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "c.xlsx")
        source.write_bytes(xlsx)
        command = [soffice, "--headless", "--convert-to", "xls:MS Excel 97", str(source), "--outdir", folder]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        return Path(folder, "c.xls").read_bytes()


def main() -> None:
    contacts = records()
    files: dict[str, bytes] = {fmt: write_rows(CONTRACT, contacts, fmt) for fmt in writable()}
    xls = as_xls(files["xlsx"])
    if xls is None:
        print("xls: skipped (LibreOffice's soffice is not installed)")
    else:
        files["xls"] = xls
    parse_file("warm.csv", files["csv"], CONTRACT, max_bytes=10**9, warn_bytes=10**9)  # imports, first-call costs
    for fmt, data in files.items():
        seconds = best_of(3, partial(parse_file, f"c.{fmt}", data, CONTRACT, max_bytes=10**9, warn_bytes=10**9))
        print(f"parse_file {fmt:5} {ROWS} rows, {len(data) / 1024:7.0f} KB: {seconds * 1000:6.0f} ms")
    xlsx = files["xlsx"]
    calamine = best_of(3, lambda: CalamineWorkbook.from_filelike(io.BytesIO(xlsx)).get_sheet_by_index(0).to_python())
    openpyxl = best_of(
        3,
        lambda: list(
            load_workbook(io.BytesIO(xlsx), read_only=True, data_only=True).worksheets[0].iter_rows(values_only=True)
        ),
    )
    print(f"raw XLSX read: python-calamine {calamine * 1000:.0f} ms, openpyxl read-only {openpyxl * 1000:.0f} ms")


if __name__ == "__main__":
    main()
