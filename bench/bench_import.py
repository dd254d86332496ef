"""Benchmark: one file imported into a store of 1,000,000 contacts (200 clients × 5,000), against its peers.

Each format (CSV comma UTF-8, CSV semicolon UTF-16, XLSX, XLS, XML) of a 5,000-row file, then a
150,000-row CSV (contract `max_rows` raised; its client holds 75,000 contacts): half the rows update
stored contacts, half are new. "Ours" is `import_client` (read, sha256, parse, validate, type, merge,
one transaction, run totals, report), split into read/validate/merge and write. Each run imports
into a client of its own (same stored contacts each time) and runs ours, the DuckDB floor and dlt
back to back (bench/peers.py). The 150,000-row runs are child processes, for their peak memory; each
run also imports 75,000 and 1,000 rows of the same shape (centred on the big seed's last contact: half
stored, half new), for how the peak grows with the file.
Run: `.venv/bin/python -m bench.bench_import` (part of `python -m bench`; BENCH_RUNS runs)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import peers
from bench.measure import Line, runs
from bench.peer_tools import peak_mb

CLIENTS, PER_CLIENT, ROWS, BIG_ROWS = 200, 5_000, 5_000, 150_000
GROWTH_FILES = {"big": BIG_ROWS, "half": BIG_ROWS // 2, "tiny": 1_000}  # the files the memory growth compares
FIELDS = [
    {"name": "Email", "xml": "email", "type": "email", "required": True},
    {"name": "First Name", "xml": "first_name"},
    {"name": "Last Name", "xml": "last_name"},
    {"name": "Account ID", "xml": "account_id"},
    {"name": "Purchase Date", "xml": "purchase_date", "type": "date"},
    {"name": "Amount", "xml": "amount", "type": "decimal"},
    {"name": "Points", "xml": "points", "type": "integer"},
    {"name": "Opted In", "xml": "opted_in", "type": "boolean"},
    {"name": "Last Visit", "xml": "last_visit", "type": "datetime"},
    {"name": "Segment", "xml": "segment", "type": "enum", "values": ["SMB", "Mid-Market", "Enterprise"]},
    {"name": "City", "xml": "city"},
    {"name": "Country", "xml": "country"},
]


@dataclass(frozen=True)
class Variant:
    """A file format as the bench sends it."""

    name: str
    extension: str
    delimiter: str = ","
    encoding: str = "utf-8"


CSV = Variant("CSV comma UTF-8", "csv")
VARIANTS = (CSV, Variant("CSV semicolon UTF-16", "csv", ";", "utf-16"), Variant("XLSX", "xlsx"),
            Variant("XLS", "xls"), Variant("XML", "xml"))  # fmt: skip


def record(i: int, salt: int) -> dict[str, Any]:
    """Contact i; another salt changes its values but the email, first name, account id and segment."""
    return {
        "email": f"person{i}@example.com",
        "first_name": f"First{i % 977}",
        "last_name": f"Last{(i + salt) % 1013}",
        "account_id": f"{i:08}",
        "purchase_date": (datetime(2020, 1, 1) + timedelta(days=(i + salt) % 2000)).date(),
        "amount": Decimal(f"{(i * 7 + salt) % 100000}.{i % 100:02}"),
        "points": (i + salt) % 5000,
        "opted_in": (i + salt) % 2 == 0,
        "last_visit": datetime(2026, 1, 1) + timedelta(minutes=(i * 13 + salt) % 500_000),
        "segment": ("SMB", "Mid-Market", "Enterprise")[i % 3],
        "city": None if (i + salt) % 5 == 0 else f"City{i % 300}",
        "country": "NL",
    }


def window(rows: int) -> list[dict[str, Any]]:
    """`rows` changed contacts centred on the big seed's last one: half of them stored, half new (the big file
    is the window of BIG_ROWS)."""
    start = BIG_ROWS // 2 - rows // 2
    return [record(i, 1) for i in range(start, start + rows)]


def contract_for(client: str, variant: Variant = CSV) -> Any:
    """The bench's 12-field contract for a client, with the variant's delimiter and room for 150,000 rows."""
    from tests.importing import make_contract

    return make_contract(client, FIELDS, max_rows=BIG_ROWS, csv={"delimiter": variant.delimiter})


class Bench:
    """The store, the files and the runs of the import lines, in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        os.environ["SFTP_IMPORT_HOME"] = str(folder / "home")
        from tasks.settings import load_settings

        self.folder = folder
        self.settings = load_settings()
        self.files: dict[str, Path] = {}

    def seed(self, clients: list[str], rows: int) -> None:
        """`rows` stored contacts (0 … rows-1) for each client, through the store's own upsert."""
        from tasks import store
        from tests.importing import stored_frame

        seed = stored_frame(contract_for("x"), [record(i, 0) for i in range(rows)])
        with store.open_store(self.settings.db_path) as con:
            for client in clients:
                with store.transaction(con):
                    store.upsert_contacts(con, contract_for(client), seed, "seed.csv", datetime.now(UTC))

    def write_files(self) -> None:
        """The 5,000-row file in each variant, the 150,000-row CSV, and the seeds dlt starts from (CSV)."""
        from schemas.samples import write_rows

        rows = [record(i, 1) for i in range(PER_CLIENT // 2, PER_CLIENT // 2 + ROWS)]
        for variant in VARIANTS:
            path = self.folder / f"{variant.name.replace(' ', '-')}.{variant.extension}"
            if variant.extension == "xls":
                peers.write_xls(self.files[CSV.name], ",", path)
            else:
                contract = contract_for("x", variant)
                path.write_bytes(write_rows(contract, rows, variant.extension, encoding=variant.encoding))
            self.files[variant.name] = path
        windows = [(name, window(rows)) for name, rows in GROWTH_FILES.items()]
        for name, records in (*windows, ("seed", [record(i, 0) for i in range(PER_CLIENT)]),
                              ("big-seed", [record(i, 0) for i in range(BIG_ROWS // 2)])):  # fmt: skip
            self.files[name] = self.folder / f"{name}.csv"
            self.files[name].write_bytes(write_rows(contract_for("x"), records, "csv"))

    def stage(self, client: str, file: Path) -> str:
        """Stage the file for the client (with its ledger row) under the file's name."""
        from tests.importing import stage_bytes

        stage_bytes(self.settings, client, file.name, file.read_bytes())
        return file.name

    def ours(self, client: str, variant: Variant, file: Path) -> tuple[float, dict[str, float]]:
        """import_client of one staged file: wall seconds, and its read and write parts."""
        from tasks import importer

        name = self.stage(client, file)
        os.sync()  # every measurement starts with no dirty pages of the one before to write back
        started = time.perf_counter()
        result = importer.import_client(
            self.settings, contract_for(client, variant), [name], run_id=f"bench-{client}", kind="daily",
            cutoff=None, started_at=datetime.now(UTC),
        )  # fmt: skip
        wall = time.perf_counter() - started
        (outcome,) = result.outcomes
        assert outcome.status == "imported", outcome
        return wall, {"read": outcome.read_seconds, "write": outcome.upsert_seconds}

    def ours_child(self, client: str, file: Path, *, profiled: bool = False) -> dict[str, Any]:
        """`ours` of a large file in a child process: seconds, parts and its peak memory (`profiled`: and the
        read's parts, `read_parts`)."""
        name = self.stage(client, file)
        os.sync()
        profile = [str(file)] if profiled else []
        return peers.child([sys.executable, "-m", "bench.bench_import", "once", client, name, *profile])

    def growth(self, peaks: dict[str, float]) -> tuple[float, float, float]:
        """How the peak grows with the file, above the 1,000-row import's (the process, its libraries, the store):
        from 75,000 to 150,000 rows the peak's growth and the file's, and the MB each MB of the big file costs."""
        sizes = {name: self.files[name].stat().st_size / 2**20 for name in GROWTH_FILES}
        memory, size = peaks["big"] - peaks["tiny"], sizes["big"] - sizes["tiny"]
        return memory / (peaks["half"] - peaks["tiny"]), size / (sizes["half"] - sizes["tiny"]), memory / size

    def floor(self, table: str, variant: Variant, file: Path) -> dict[str, Any]:
        """The DuckDB floor for a CSV of the bench's contract."""
        from schemas.field_types import FIELD_TYPES

        columns = {f.id: FIELD_TYPES[f.type].sql for f in contract_for("x").fields}
        os.sync()
        return peers.floor(self.settings.db_path, table, file, variant.delimiter, variant.encoding, columns)

    def dlt(self, seed: str, file: Path, run: int) -> dict[str, Any]:
        """dlt's merge of the file into its own DuckDB file seeded with the same stored contacts."""
        folder = self.folder / f"dlt-{file.stem}-{run}"
        folder.mkdir()
        os.sync()
        return peers.dlt(self.files[seed], file, ",", folder / "dlt.duckdb")


def lines() -> list[Line]:
    """Build the store and files, run every import line interleaved, return the lines."""
    count = runs(5)
    small = {v.name: Line("import 5k", v.name, "DuckDB floor") for v in VARIANTS if v.extension == "csv"}
    small[CSV.name].target, small[CSV.name].target_note = 2.0, "≤ 2× the floor"
    other = {v.name: Line("import 5k", v.name, "our CSV") for v in VARIANTS if v.extension != "csv"}
    for name, line in other.items():
        line.target = 2.0 if name == "XML" else 1.5
        line.target_note = f"≤ {line.target:g}× our CSV"
    vs_dlt = Line("import 5k", f"{CSV.name} vs dlt", "dlt (Arrow, merge)", target=0.2, target_note="≥ 5× faster")
    big = Line("import 150k", "CSV comma UTF-8", "DuckDB floor")
    big_dlt = Line("import 150k", "CSV comma UTF-8 vs dlt", "dlt (Arrow, merge)", target=1.0, target_note="ahead")
    big_target = Line("import 150k", "CSV comma UTF-8", "target 2 s", target=1.0, target_note="≤ 2 s")
    peak = Line("import 150k", "peak memory", "DuckDB floor", unit="MB")
    peak_dlt = Line("import 150k", "peak memory vs dlt", "dlt", unit="MB")
    peak_target = Line("import 150k", "peak memory", "target 300 MB", unit="MB", target=1.0, target_note="≤ 300 MB")
    growth = Line("import 150k", "peak memory growth, 150,000 vs 75,000 rows", "the file's growth", unit="×",
                  target=1.0, target_note="grows no faster than the file")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-import-") as name:
        bench = Bench(Path(name))
        clients = [f"client{c:03}" for c in range(CLIENTS)]
        started = time.perf_counter()
        bench.seed(clients, PER_CLIENT)
        bench.seed([f"{kind}{r}" for kind in GROWTH_FILES for r in range(count)], BIG_ROWS // 2)
        bench.write_files()
        print(f"  store of {CLIENTS * PER_CLIENT:,} contacts and the files in {time.perf_counter() - started:.0f} s")
        for variant in VARIANTS:  # warm-up: imports and first-call costs, into the last clients
            bench.ours(clients[-1 - VARIANTS.index(variant)], variant, bench.files[variant.name])
        for run in range(count):
            csv_seconds = 0.0
            for index, variant in enumerate(VARIANTS):
                client, file = clients[run * len(VARIANTS) + index], bench.files[variant.name]
                seconds, parts = bench.ours(client, variant, file)
                if variant.extension == "csv":
                    floor = bench.floor(f"floor_{index}_{run}", variant, file)
                    small[variant.name].add(seconds, floor["seconds"], **parts)
                else:
                    other[variant.name].add(seconds, csv_seconds, **parts)
                if variant is CSV:
                    csv_seconds = seconds
                    vs_dlt.add(seconds, bench.dlt("seed", file, run)["seconds"], **parts)
            print(f"  5,000 rows: run {run + 1}/{count} done", flush=True)
        for run in range(count):  # after the small files: their runs never follow a big one's write-back
            mine = bench.ours_child(f"big{run}", bench.files["big"], profiled=True)
            floor = bench.floor(f"floor_big_{run}", CSV, bench.files["big"])
            theirs = bench.dlt("big-seed", bench.files["big"], run)
            parts = {key: mine[key] for key in ("read", "write", "cells", "typing", "csv_reader")}
            big.add(mine["seconds"], floor["seconds"], **parts)
            big_dlt.add(mine["seconds"], theirs["seconds"], **parts)
            big_target.add(mine["seconds"], 2.0, **parts)
            peak.add(mine["peak_mb"], floor["peak_mb"])
            peak_dlt.add(mine["peak_mb"], theirs["peak_mb"])
            peak_target.add(mine["peak_mb"], 300.0)
            peaks = {kind: bench.ours_child(f"{kind}{run}", bench.files[kind])["peak_mb"] for kind in ("half", "tiny")}
            ratio, file_ratio, per_file_mb = bench.growth(peaks | {"big": mine["peak_mb"]})
            growth.add(ratio, file_ratio, mb_per_file_mb=per_file_mb)
            print(f"  150,000 rows: run {run + 1}/{count} done", flush=True)
    bound_by_profile(vs_dlt, small[CSV.name], big_dlt)
    return [*small.values(), vs_dlt, *other.values(), big, big_dlt, big_target, peak, peak_dlt, peak_target, growth]


def read_parts(path: Path, contract: Any) -> dict[str, float]:
    """The read's parts, timed again on the same file in the same process: its cells (decoded, split by the
    stdlib CSV reader, joined into the column table), their typing and validation, and the stdlib CSV reader
    alone over the same text (no cell kept): what a read in Python costs before it holds a cell."""
    import csv
    import io
    from collections import deque

    from tasks.validate import gc_paused, read_file, type_rows

    data = path.read_bytes()

    def seconds(call: Callable[[], Any]) -> tuple[Any, float]:
        started = time.perf_counter()
        return call(), time.perf_counter() - started

    with gc_paused():
        _, reader = seconds(
            lambda: deque(csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")), 0)
        )
        checked, cells = seconds(lambda: read_file(path.name, data, contract, max_bytes=10**9, warn_bytes=10**9))
        _, typing = seconds(lambda: type_rows(checked))
    return {"cells": cells, "typing": typing, "csv_reader": reader}


def bound_by_profile(small_dlt: Line, small_floor: Line, big_dlt: Line) -> None:
    """What bounds the dlt lines where their target is not met, in this run's medians: at 5,000 rows, the
    time the target asks for against DuckDB's own floor for the file; at 150,000, ours without its read
    against dlt's, and the read's parts (a Python object a cell: read, then typed and validated)."""
    if small_dlt.verdict == "NOT met" and small_dlt.target:
        asked, floor = small_dlt.median("reference") * small_dlt.target, small_floor.median("reference")
        below = "below" if asked < floor else "above"
        small_dlt.bound = (
            f"{1 / small_dlt.target:g}× faster is {asked:.3g} s, {below} DuckDB's floor for the file, {floor:.3g} s"
        )
    if big_dlt.verdict == "NOT met":
        theirs, ours, read, cells, reader, typing = (
            big_dlt.median(of) for of in ("reference", "ours", "read", "cells", "csv_reader", "typing")
        )
        big_dlt.bound = (
            f"ahead is under {theirs:.3g} s; ours without its read {ours - read:.3g} s, the read {read:.3g} s: "
            f"the cells {cells:.3g} s (the stdlib CSV reader alone {reader:.3g} s), "
            f"typing and validating them {typing:.3g} s"
        )


def once(client: str, name: str, path: str | None = None) -> None:
    """The child of `Bench.ours_child`: warm up on a small file, import the staged file, print JSON (with `path`,
    the file's own copy: the read's parts, timed again after the peak is taken)."""
    from tasks import importer
    from tasks.settings import load_settings
    from tasks.validate import parse_file

    settings = load_settings()
    contract = contract_for(client)
    header = ",".join(f["name"] for f in FIELDS).encode()
    parse_file("warm.csv", header + b"\na@x.io,,,,,,,,,,,\n", contract, max_bytes=10**9, warn_bytes=10**9)
    started = time.perf_counter()
    result = importer.import_client(
        settings, contract, [name], run_id=f"bench-{client}", kind="daily", cutoff=None, started_at=datetime.now(UTC)
    )
    seconds = time.perf_counter() - started
    (outcome,) = result.outcomes
    assert outcome.status == "imported", outcome
    peak = peak_mb()
    answer = {"seconds": seconds, "read": outcome.read_seconds, "write": outcome.upsert_seconds, "peak_mb": peak}
    print(json.dumps(answer | (read_parts(Path(path), contract) if path else {})))


if __name__ == "__main__":
    if sys.argv[1:2] == ["once"]:
        once(*sys.argv[2:5])
    else:
        for line in lines():
            print(line.row())
