"""Calamine in a process of its own. A damaged workbook can make it abort, not raise: a sheet of absurd
dimensions makes the Rust code ask for 100 GB, and a failed allocation ends the process. Run in the
import's own process, that kills every client of the slot; here it kills a worker, and the file is
rejected as damaged. The worker is kept for the next workbook (started once per process, ~1 s), and
its address space is capped, so a large but possible allocation fails fast instead of swapping."""

from __future__ import annotations

import io
import math
import multiprocessing
import resource
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from schemas.field_types import FIELD_TYPES

MEMORY_LIMIT_BYTES = 4 * 2**30  # the worker's address space

Cell = str | float | int | bool | date | datetime | time | timedelta | None


def cell_text(value: Cell) -> str:
    """A cell as text, empty as ''; a typed cell in the text form of its type (schemas/field_types.py),
    so it parses as that type: whole numbers without '.0', exact decimals, ISO dates, true/false."""
    if isinstance(value, str):  # most cells
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return FIELD_TYPES["boolean"].text(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return FIELD_TYPES["integer"].text(int(value))
        shortest = repr(value)  # the shortest text that reads back as this float: exact decimal digits
        if math.isfinite(value) and "e" not in shortest:
            return shortest  # already the decimal's text form (no exponent, no trailing zero)
        return FIELD_TYPES["decimal"].text(Decimal(shortest))
    if isinstance(value, datetime):
        return FIELD_TYPES["datetime"].text(value)
    if isinstance(value, date):
        return FIELD_TYPES["date"].text(value)
    if isinstance(value, time):
        return value.isoformat()
    return str(value)


_executor: ProcessPoolExecutor | None = None
_starting = threading.Lock()


class SheetUnreadable(Exception):
    """The worker reading the workbook died: the file made calamine abort."""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def first_sheet(data: bytes) -> tuple[str, Any, Any]:
    """In the worker: ("cells", first row index, rows of cells as text), ("empty", …), ("password", …) or
    ("damaged", exception type name, …): plain values, whatever calamine raised. The cells are made text
    here (`cell_text`): text crosses to the importing process faster than dates and numbers do."""
    from python_calamine import CalamineWorkbook, PasswordError

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            return "empty", None, None
        sheet = workbook.get_sheet_by_index(0)
        rows = sheet.to_python(skip_empty_area=True)
        texts = [[value if type(value) is str else cell_text(value) for value in row] for row in rows]
        return "cells", sheet.start[0] if sheet.start else 0, texts
    except PasswordError:
        return "password", None, None
    except BaseException as exc:  # calamine raises several unrelated types for damaged files
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # an interrupt or an exit, not the file; a Rust panic of the parser (pyo3) is the file's
        return "damaged", type(exc).__name__, None


def _worker() -> ProcessPoolExecutor:
    global _executor
    with _starting:
        if _executor is None:
            context = multiprocessing.get_context("spawn")  # no fork of a process running threads
            _executor = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_cap_memory)
        return _executor


def _forget(broken: ProcessPoolExecutor) -> None:
    global _executor
    with _starting:
        if _executor is broken:
            _executor = None


def read_first_sheet(data: bytes) -> tuple[str, Any, Any]:
    """`first_sheet` run by the worker. A worker that dies is replaced and the file tried once more (it
    may have died of another thread's file); SheetUnreadable when it dies on this one again."""
    for _ in range(2):
        executor = _worker()
        try:
            return executor.submit(first_sheet, data).result()
        except BrokenProcessPool:
            _forget(executor)
    raise SheetUnreadable("the worker reading the workbook died on it")
