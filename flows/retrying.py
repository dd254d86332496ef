"""Retry conditions for tasks: which failures are worth another attempt (transport), which are not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task

RetryCondition = Callable[[Task[..., Any], TaskRun, State[Any]], bool]


def _failure(state: State[Any]) -> BaseException | None:
    try:
        state.result()
    except BaseException as exc:
        return exc
    return None


def retry_unless(*permanent: type[BaseException]) -> RetryCondition:
    """Retry any failure except these (a refusal, a wrong key or setting: another attempt fails the same)."""

    def condition(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
        error = _failure(state)
        return error is not None and not isinstance(error, permanent)

    return condition


def retry_only_on(*transient: type[BaseException]) -> RetryCondition:
    """Retry only these failures (I/O), never a bug or bad data."""

    def condition(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
        return isinstance(_failure(state), transient)

    return condition
