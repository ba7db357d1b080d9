"""Catch-up: fill what write-back missed of a DAG run from what Airflow's REST API says of it.

The Django side (``django_etl.control.catchup``) lists recent DAG runs through the API and hands them here as
the API's JSON. This module finds what Django lacks (``run_gaps``, ``task_gaps``) and writes it with the
recorder's own functions (``catch_up``), so a caught-up run is recorded exactly as live write-back would have
recorded it: the same keys, the same state mapping, the same alerts, each once. Nothing here talks HTTP, and
everything writes through the recorder's alias. See docs/write-back.md, "Outages and catch-up".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow_plugin.writeback import delivery, recorder
from airflow_plugin.writeback.alerts import task_failure_alert
from airflow_plugin.writeback.delivery import ALIAS
from airflow_plugin.writeback.events import TaskInfo, parse_when, run_info_from_api, task_info_from_api
from airflow_plugin.writeback.tasks import (
    read_manifest,
    resolve_step_id,
    rows_of_run,
    task_status,
    upsert_task_run,
)
from django_etl.runs.choices import RunStatus

FINISHED_RUN_STATES = frozenset({"success", "failed"})
OPEN = frozenset({RunStatus.PENDING, RunStatus.RUNNING})
# What the API never says of a failed try: its exception. A TASK_FAILED alert of an earlier try says so.
UNKNOWN_ERROR = "its error is not known to the catch-up (Airflow's API does not keep it): see try {n}'s log"
# The listener's message for a DAG run its dagrun_timeout stopped (recorder._settle reads it).
TIMED_OUT = "timed_out"


def run_gaps(dag_runs: list[dict[str, Any]]) -> dict[tuple[str, str], str | None]:
    """(dag_id, run_id) -> why Django's record of the run may lack something, or None when it is complete.

    Judged from the run alone, in two queries: a run of a pipeline Django no longer has needs nothing; a
    finished run whose end-of-run reconciliation was written (``metrics.reconciled``) with the end Airflow gives
    is complete. Anything else is a gap, except a run still open in Airflow and open in Django ("open"), which
    only its task instances can tell (``task_gaps``).
    """
    delivery.setup_django()
    from django.db.models import Q

    from django_etl.pipelines.models import Pipeline
    from django_etl.pipelines.naming import pipeline_id_from_dag_id
    from django_etl.runs.models import PipelineRun

    keys = {(r["dag_id"], r["dag_run_id"]) for r in dag_runs}
    if not keys:
        return {}
    match = Q()
    for dag_id, run_id in keys:
        match |= Q(airflow_dag_id=dag_id, airflow_run_id=run_id)
    rows = {
        (row.airflow_dag_id, row.airflow_run_id): row
        for row in PipelineRun.objects.using(ALIAS)
        .filter(match)
        .only("airflow_dag_id", "airflow_run_id", "status", "completed_at", "metrics")
    }
    # Runs of a pipeline deleted from Django have nothing to be recorded against (live write-back skips them).
    wanted = {str(pipeline_id_from_dag_id(dag_id)) for dag_id, _ in keys}
    pipelines = {
        str(pk) for pk in Pipeline.objects.using(ALIAS).filter(pk__in=wanted).values_list("pk", flat=True)
    }
    return {
        (r["dag_id"], r["dag_run_id"]): (
            _run_gap(r, rows.get((r["dag_id"], r["dag_run_id"])))
            if str(pipeline_id_from_dag_id(r["dag_id"])) in pipelines
            else None
        )
        for r in dag_runs
    }


def _run_gap(dag_run: dict[str, Any], row) -> str | None:
    if dag_run.get("state") == "queued":
        return None  # nothing ran yet: live write-back records nothing before it runs either
    if row is None:
        return "not recorded"
    if dag_run.get("state") not in FINISHED_RUN_STATES:
        return "open" if row.status in OPEN else f"{row.status} in Django, {dag_run.get('state')} in Airflow"
    if row.status in OPEN:
        return f"{row.status} in Django, {dag_run.get('state')} in Airflow"
    if (row.metrics or {}).get("reconciled") is False:
        # Settled by the DAG callbacks' safety net from Django's rows: the end-of-run reconciliation was lost.
        # (Rows settled before the mark existed carry none: their reconciliation ran; a second one would find
        # a successful run's manifests deleted.)
        return "settled without all its task instances"
    if row.completed_at != parse_when(dag_run.get("end_date")):
        return "settled before its last end in Airflow"
    return None


def task_gaps(dag_run: dict[str, Any], task_instances: list[dict[str, Any]], spec=None) -> list[str]:
    """What Django's task runs of this run lack against the API's task instances: missing rows, other states
    or tries. Task instances that are not pipeline steps (the run-outcome task) are not recorded, not counted."""
    from django_etl.runs.models import PipelineRun

    pipeline_run = (
        PipelineRun.objects.using(ALIAS)
        .filter(airflow_dag_id=dag_run["dag_id"], airflow_run_id=dag_run["dag_run_id"])
        .first()
    )
    if pipeline_run is None:
        return ["not recorded"]
    rows = rows_of_run(pipeline_run)
    gaps = []
    for ti in _started(task_instances):
        task = task_info_from_api(ti)
        step_id = resolve_step_id(pipeline_run, task, spec)
        if step_id is None:
            continue
        row = rows.get(step_id)
        status = task_status(task)
        if row is None:
            gaps.append(f"{task.task_id}: not recorded")
        elif row.status != status or int((row.metrics or {}).get("try_number") or 0) != task.try_number:
            gaps.append(
                f"{task.task_id}: {row.status} in Django, {status} (try {task.try_number}) in Airflow"
            )
    return gaps


def catch_up(
    dag_run: dict[str, Any],
    task_instances: list[dict[str, Any]],
    tries: dict[str, list[dict[str, Any]]] | None = None,
    spec: dict[str, Any] | None = None,
    dag_run_timeout: Any = None,
) -> None:
    """Write what Django lacks of one DAG run with the recorder's functions; raises what the database raises.

    A finished run is reconciled as its end would have been (task runs, alerts, lineage from the manifests
    still staged, the outcome, then its staged data deleted after a success). An open run gets its PipelineRun
    and its task runs so far, never settled: its own end reconciles it. ``tries``: task_id -> every try of the
    task instances that ran more than once (the earliest start, and the TASK_FAILED alerts of earlier tries).
    ``dag_run_timeout``: the DAG's, as the API gives it, to tell a timed-out run from a stopped one.
    """
    delivery.setup_django()
    tries = tries or {}
    run = run_info_from_api(dag_run)
    tasks = [
        task_info_from_api(ti, first_start=_first_start(tries.get(ti["task_id"]) or []))
        for ti in task_instances
    ]
    # Earlier failed tries first, as their callbacks came before the last try's events: a later success
    # then resolves their alert, as it does live.
    retried = [task for task in tasks if task.task_id in tries]
    if retried:
        _earlier_failures(run, retried, tries, spec)
    if run.state in FINISHED_RUN_STATES:
        recorder.reconcile(run, tasks, _airflow_msg(dag_run, dag_run_timeout), spec)
        return
    pipeline_run = recorder.record_run(run, spec)
    if pipeline_run is not None:
        recorder.record_task_instances(pipeline_run, run, [t for t in tasks if t.state], spec)


def _earlier_failures(run, tasks: list[TaskInfo], tries: dict[str, list[dict[str, Any]]], spec) -> None:
    """The TASK_FAILED alerts the callbacks of the tasks' earlier failed tries would have raised."""
    pipeline_run = recorder.record_run(run, spec)
    if pipeline_run is None:
        return
    for task in tasks:
        earlier = _failed_earlier_tries(tries[task.task_id], task)
        if not earlier:
            continue
        manifest = read_manifest(run.dag_id, run.run_id, task.task_id)
        task_run = upsert_task_run(pipeline_run, task, manifest, spec)
        for attempt in earlier if task_run is not None else []:
            task_failure_alert(pipeline_run, task_run, run, attempt, None)


def _started(task_instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Task instances of an open run the scheduler has reached (a state); the others have no task run yet."""
    return [ti for ti in task_instances if ti.get("state")]


def _first_start(tries: list[dict[str, Any]]) -> Any:
    starts = [parse_when(t.get("start_date")) for t in tries if t.get("start_date")]
    return min(starts) if starts else None


def _failed_earlier_tries(tries: list[dict[str, Any]], task: TaskInfo) -> list[TaskInfo]:
    """The tries before the task instance's current one that failed: retried ones (a retry callback's
    warning) and failed ones a user cleared to run again (a failure callback's error)."""
    earlier = []
    for attempt in tries:
        number = int(attempt.get("try_number") or 0)
        state = attempt.get("state")
        if not (0 < number < task.try_number and state in {"up_for_retry", "failed"}):
            continue
        # Airflow's history keeps a retried try as failed: it was a retry if it had tries left then.
        max_tries = int(attempt.get("max_tries") or 0)
        retried = state == "up_for_retry" or number <= max_tries
        earlier.append(
            TaskInfo(
                task_id=task.task_id,
                event="retry" if retried else "failure",
                state="up_for_retry" if retried else "failed",
                try_number=number,
                max_tries=max_tries,
                error=UNKNOWN_ERROR.format(n=number),
            )
        )
    return earlier


def _airflow_msg(dag_run: dict[str, Any], dag_run_timeout: Any) -> str:
    """The scheduler's reason for a failed run, where the API lets it be known: a run its DAG's
    dagrun_timeout stopped lasted at least that long. Other reasons the recorder reads from the task states."""
    limit = _duration(dag_run_timeout)
    start, end = parse_when(dag_run.get("start_date")), parse_when(dag_run.get("end_date"))
    if dag_run.get("state") == "failed" and limit and start and end and end - start >= limit:
        return TIMED_OUT
    return ""


def _duration(value: Any) -> timedelta | None:
    """A timedelta as the API serializes it (ISO 8601 duration or seconds); None when absent or unreadable."""
    if value in (None, ""):
        return None
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(timedelta).validate_python(value)
    except ValidationError:
        return None
