"""A "machine" of deployments/cluster.py lost at once, for tests/test_cluster.py: the worker and every process
under it SIGKILLed. Its process group alone is not the machine: the flow runs a process worker starts sit in
sessions of their own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections import defaultdict
from pathlib import Path


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    tree: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            tree[int(stat.read_text().rsplit(")", 1)[1].split()[1])].append(int(stat.parent.name))
    return tree


def _tree(pid: int) -> set[int]:
    """`pid` and all its descendants."""
    children, found, todo = _children(), set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(child for child in children.get(current, []) if child not in found)
    return found


def kill_machine(worker: subprocess.Popen[bytes]) -> None:
    """A machine lost at once: the worker and every process under it SIGSTOPped (so none forks or is
    reparented away meanwhile), then SIGKILLed."""
    stopped: set[int] = set()
    while new := _tree(worker.pid) - stopped:
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= new
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait()
