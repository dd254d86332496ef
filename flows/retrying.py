"""The tasks' one retry condition: another attempt only for a transient failure (`tasks.errors.fault_of`)."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task

from tasks.errors import Fault, fault_of


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a dropped connection or busy I/O; never the client's data, a configuration problem or a bug."""
    try:
        state.result()
    except BaseException as error:
        return fault_of(error) is Fault.TRANSIENT
    return False
