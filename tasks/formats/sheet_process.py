"""Calamine in a process of its own. A damaged workbook can make it abort, not raise: a sheet of absurd
dimensions makes the Rust code ask for 100 GB, and a failed allocation ends the process. Run in the
import's own process, that kills every client of the slot; here it kills a worker, and the file is
rejected as damaged. The worker is kept for the next workbook (started once per process, ~1 s), and
its address space is capped, so a large but possible allocation fails fast instead of swapping."""

from __future__ import annotations

import io
import multiprocessing
import resource
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

MEMORY_LIMIT_BYTES = 4 * 2**30  # the worker's address space

_executor: ProcessPoolExecutor | None = None
_starting = threading.Lock()


class SheetUnreadable(Exception):
    """The worker reading the workbook died: the file made calamine abort."""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def first_sheet(data: bytes) -> tuple[str, Any, Any]:
    """In the worker: ("cells", first row index, rows of cells), ("empty", …), ("password", …) or
    ("damaged", exception type name, …): plain values, whatever calamine raised."""
    from python_calamine import CalamineWorkbook, PasswordError

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            return "empty", None, None
        sheet = workbook.get_sheet_by_index(0)
        return "cells", sheet.start[0] if sheet.start else 0, sheet.to_python(skip_empty_area=True)
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
