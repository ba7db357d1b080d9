"""Task and DAG callbacks the DAG builder attaches to every generated task and DAG; they feed the recorder.

They run in the task's own process (DAG callbacks in a child of the dag-processor), turn the callback context
into typed records (``events``) and hand them to the recorder, which never raises and waits at most a short,
configured timeout: a slow or unreachable Django database never fails a task. No Django import here: the
builder imports this module at every DAG-file parse.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("airflow_plugin.writeback")


def _task_event(context: Any, event: str) -> None:
    try:
        from airflow_plugin.writeback import events, recorder

        task = context.get("task")
        step, pipeline = events.spec_of_task(task)
        run = events.run_info(context["dag_run"])
        spec: dict[str, Any] = {"pipeline": events.pipeline_facts(pipeline)}
        if event == "execute" and step is not None:
            # The first event of a run records the task_id -> step map the scheduler cannot rebuild.
            spec["steps"] = events.steps_map_of_dag(context.get("dag") or getattr(task, "dag", None))
        info = events.task_info(context["ti"], event=event, error=context.get("exception"))
        recorder.task_event(run, info, spec)
    except Exception as exc:  # a callback must never fail or slow down the task it reports on
        log.warning("write-back callback (%s) skipped: %s: %s", event, type(exc).__name__, exc)


def on_task_execute(context: Any) -> None:
    """A try of a task starts (runs in the task process)."""
    _task_event(context, "execute")


def on_task_success(context: Any) -> None:
    """A task succeeded."""
    _task_event(context, "success")


def on_task_failure(context: Any) -> None:
    """A task failed for good."""
    _task_event(context, "failure")


def on_task_retry(context: Any) -> None:
    """A try failed and will be retried."""
    _task_event(context, "retry")


def _dag_event(context: Any, event: str) -> None:
    # The scheduler's DAG-run listener reconciles every task; this only settles a run it left open.
    try:
        from dataclasses import replace

        from airflow_plugin.writeback import events, recorder

        run = replace(
            events.run_info(context["dag_run"]), state="success" if event == "success" else "failed"
        )
        recorder.run_closed(run, str(context.get("reason") or ""))
    except Exception as exc:
        log.warning("write-back DAG callback (%s) skipped: %s: %s", event, type(exc).__name__, exc)


def on_dag_success(context: Any) -> None:
    """A DAG run succeeded."""
    _dag_event(context, "success")


def on_dag_failure(context: Any) -> None:
    """A DAG run failed."""
    _dag_event(context, "failure")


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
