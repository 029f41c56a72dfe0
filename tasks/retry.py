"""Retries only for transient failures (S3 5xx, throttling, connection resets), never for bad input."""

from __future__ import annotations

from typing import Any

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from audiox_core.errors import TransientError

RETRY_DELAYS = [2, 10, 30]  # seconds before each retry


def transient_only(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect retry condition: retry when the task failed with a TransientError."""
    try:
        state.result(raise_on_failure=True)
    except TransientError:
        return True
    except Exception:  # any other failure is final: InputError, ModelError, bugs
        return False
    return False


# The ``@task`` options of every task whose failures may be transient (S3, the database):
# ``@task(name=..., cache_policy=NO_CACHE, **TRANSIENT_RETRIES)``.
TRANSIENT_RETRIES: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": transient_only,
}
