"""Task and DAG callbacks the DAG builder attaches to every generated task and DAG; they feed the recorder."""

from __future__ import annotations

from typing import Any


def on_task_execute(context: Any) -> None:
    """A try of a task starts (runs in the task process)."""


def on_task_success(context: Any) -> None:
    """A task succeeded."""


def on_task_failure(context: Any) -> None:
    """A task failed for good."""


def on_task_retry(context: Any) -> None:
    """A try failed and will be retried."""


def on_dag_success(context: Any) -> None:
    """A DAG run succeeded."""


def on_dag_failure(context: Any) -> None:
    """A DAG run failed."""


TASK_CALLBACKS = {
    "on_execute_callback": on_task_execute,
    "on_success_callback": on_task_success,
    "on_failure_callback": on_task_failure,
    "on_retry_callback": on_task_retry,
}
DAG_CALLBACKS = {
    "on_success_callback": on_dag_success,
    "on_failure_callback": on_dag_failure,
}
