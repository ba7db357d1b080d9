"""Airflow listener hooks (registered by airflow_plugin.plugin) that feed the recorder.

Task hooks see what callbacks also see, plus state changes made from the UI or the REST API (then with the
API server's TaskInstance). The DAG-run hooks run in the scheduler, which sees every task instance, so the end
of every run reconciles all of them: skipped, upstream-failed and killed tasks fire no task event at all.
The lifecycle hooks set Django up when a component starts and drain the delivery queue before it (or a task
process) stops. No Django import at module level: the plugin loads this module in every Airflow process.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from airflow.listeners import hookimpl

from airflow_plugin.writeback import delivery, events
from django_etl import conf

log = logging.getLogger("airflow_plugin.writeback")


@hookimpl
def on_starting(component: Any) -> None:
    """Set Django up once when an Airflow component (scheduler, dag-processor, triggerer) starts.

    The scheduler's LocalExecutor workers, and the task processes they start, are forked from it, and the
    dag-processor forks the processes that run DAG callbacks: they inherit a ready Django instead of each
    paying its import and set-up (about 1.6 s on a 2-core machine) before their first write-back. No
    database connection is opened here, so none is shared across the fork. ETL_WARM_DJANGO=false turns it off.
    """
    try:
        if not conf.value("ETL_WARM_DJANGO"):
            return
        started = time.monotonic()
        delivery.setup_django()
        from airflow_plugin.writeback import recorder  # noqa: F401  (imported to be inherited)

        log.info("Django set up for write-back in %.2f s", time.monotonic() - started)
    except Exception as exc:  # a broken Django configuration must not stop Airflow from starting
        log.warning("write-back warm-up skipped: %s: %s", type(exc).__name__, exc)


@hookimpl
def before_stopping(component: Any) -> None:
    """Deliver what is still queued before a component (scheduler, dag-processor…) or a task process stops.

    A task process ends with ``os._exit()`` right after this hook, and a component's exit does not wait for
    the worker thread either: without this wait, a write its caller stopped waiting for would be lost. The
    wait is bounded by ETL_RECORDER_TIMEOUT and costs nothing when the queue is empty.
    """
    try:
        delivery.drain(component)
    except Exception as exc:  # a listener must never break the process that calls it
        log.warning("write-back drain skipped: %s: %s", type(exc).__name__, exc)


def _spec_of_dag(dag: Any) -> dict[str, Any]:
    steps = events.steps_map_of_dag(dag) if dag is not None else {}
    return {"steps": steps} if steps else {}


def _is_pipeline_dag(dag_id: Any) -> bool:
    """Only generated pipeline DAGs are recorded; other DAGs cost no Django set-up and no warning."""
    from django_etl.pipelines.naming import pipeline_id_from_dag_id

    return isinstance(dag_id, str) and pipeline_id_from_dag_id(dag_id) is not None


def _task(task_instance: Any, event: str, error: Any = None) -> None:
    try:
        from airflow_plugin.writeback import recorder

        if not _is_pipeline_dag(getattr(task_instance, "dag_id", None)):
            return
        task = getattr(task_instance, "task", None)
        if hasattr(task_instance, "get_template_context"):
            # Task process (RuntimeTaskInstance): its context has the run; the operator carries the spec.
            context = task_instance.get_template_context()
            run = events.run_info(context["dag_run"])
            _, pipeline = events.spec_of_task(task)
            spec = {"pipeline": events.pipeline_facts(pipeline)}
        else:
            # API server (state set from the UI or the REST API): the ORM task instance and its run.
            run = events.run_info(task_instance.dag_run)
            spec = {}
        if (
            event == "failure"
            and str(getattr(task_instance.state, "value", task_instance.state)) == "up_for_retry"
        ):
            event = "retry"
        recorder.task_event(run, events.task_info(task_instance, event=event, error=error), spec)
    except Exception as exc:  # listeners must never break the process that calls them
        log.warning("write-back listener (%s) skipped: %s: %s", event, type(exc).__name__, exc)


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    _task(task_instance, "execute")


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    _task(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    _task(task_instance, "failure", error)


@hookimpl
def on_task_instance_skipped(previous_state: Any, task_instance: Any) -> None:
    _task(task_instance, "skipped")


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    try:
        from airflow_plugin.writeback import recorder

        if not _is_pipeline_dag(getattr(dag_run, "dag_id", None)):
            return
        run = events.run_info(dag_run, event="dag_run_running")
        recorder.run_started(run, _spec_of_dag(getattr(dag_run, "dag", None)))
    except Exception as exc:
        log.warning("write-back listener (dag run running) skipped: %s: %s", type(exc).__name__, exc)


def _task_instances(dag_run: Any) -> list[Any]:
    """The run's task instances, read through the caller's own session.

    The scheduler holds its DAG-run row locked in an open transaction and refuses any commit in between
    ("UNEXPECTED COMMIT"): a fresh session here would commit and break the scheduler loop.
    """
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        return list(dag_run.get_task_instances(session=session))
    return list(dag_run.get_task_instances())


def reconcile_dag_run(dag_run: Any, msg: str) -> None:
    """Hand every task instance of a finished run to the recorder (reads Airflow's DB in this thread)."""
    name = "?"
    try:
        from airflow_plugin.writeback import recorder

        if not _is_pipeline_dag(dag_run.dag_id):
            return
        name = f"{dag_run.dag_id}/{dag_run.run_id}"

        run = events.run_info(dag_run)
        tasks = [events.task_info(ti, event="reconcile") for ti in _task_instances(dag_run)]
        recorder.run_finished(run, tasks, msg or "", _spec_of_dag(getattr(dag_run, "dag", None)))
    except Exception as exc:
        log.warning("write-back reconciliation of %s skipped: %s: %s", name, type(exc).__name__, exc)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    reconcile_dag_run(dag_run, msg)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    reconcile_dag_run(dag_run, msg)
