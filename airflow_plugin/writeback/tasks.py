"""TaskRun upserts for the recorder: step resolution, state mapping, manifest data and captured logs."""

from __future__ import annotations

import logging
import time
from typing import Any

from airflow_plugin.writeback import delivery, task_logs
from airflow_plugin.writeback.delivery import ALIAS
from airflow_plugin.writeback.events import TaskInfo
from django_etl.connectors.secrets import secret_values
from django_etl.runs import logview
from django_etl.runs.choices import FINISHED_STATUSES, RunStatus

log = logging.getLogger("airflow_plugin.writeback")

# Airflow task-instance state -> RunStatus.
TASK_STATUS = {
    "success": RunStatus.SUCCESS,
    "failed": RunStatus.FAILED,
    "skipped": RunStatus.SKIPPED,
    "upstream_failed": RunStatus.UPSTREAM_FAILED,
    "removed": RunStatus.SKIPPED,
    "running": RunStatus.RUNNING,
    "up_for_retry": RunStatus.RUNNING,
    "up_for_reschedule": RunStatus.RUNNING,
    "deferred": RunStatus.RUNNING,
    "restarting": RunStatus.RUNNING,
    "queued": RunStatus.PENDING,
    "scheduled": RunStatus.PENDING,
}
# What a task event says when the task instance's state does not (yet) say more.
EVENT_STATUS = {
    "execute": RunStatus.RUNNING,
    "success": RunStatus.SUCCESS,
    "retry": RunStatus.RUNNING,
    "failure": RunStatus.FAILED,
}
FINISHED = frozenset(FINISHED_STATUSES)
TIMEOUT_ERRORS = {"AirflowTaskTimeout", "TaskDeferralTimeout"}
NEVER_RUN = frozenset({RunStatus.SKIPPED, RunStatus.UPSTREAM_FAILED})
DATASET_KEYS = ("dataset", "uri", "rows", "schema", "format")
SECRETS_CACHE_SECONDS = 60.0


def read_manifest(dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
    """The step's result manifest (written by the operator), or None; unreadable counts as missing."""
    try:
        from django_etl.dataplane.staging import read_manifest as read
    except ImportError:
        return None
    try:
        manifest = read(dag_id, run_id, task_id)
    except Exception as exc:
        log.warning("write-back: manifest of %s/%s/%s unreadable: %s", dag_id, run_id, task_id, exc)
        return None
    return manifest if isinstance(manifest, dict) else None


def task_status(task: TaskInfo) -> RunStatus:
    state = task.state
    status = TASK_STATUS.get(state) if state else None
    if status is None or (task.event in EVENT_STATUS and state in {None, "running"}):
        status = EVENT_STATUS.get(task.event, status or RunStatus.PENDING)
    if status == RunStatus.FAILED and task.error_type in TIMEOUT_ERRORS:
        status = RunStatus.TIMEOUT
    return status


def resolve_step_id(pipeline_run, task: TaskInfo, spec: dict[str, Any] | None) -> str | None:
    """The PipelineStep of a task: the operator's word, the run's recorded map, else the step names."""
    from django_etl.pipelines.models import PipelineStep
    from django_etl.pipelines.naming import task_id_for

    if task.step_id:
        return str(task.step_id)
    for steps in ((spec or {}).get("steps") or {}, (pipeline_run.context or {}).get("steps") or {}):
        entry = steps.get(task.task_id)
        if entry and entry.get("id"):
            return str(entry["id"])
    for step_id, name in (
        PipelineStep.objects.using(ALIAS)
        .filter(pipeline_id=pipeline_run.pipeline_id)
        .values_list("id", "name")
    ):
        if task_id_for(name) == task.task_id:
            return str(step_id)
    return None


def upsert_task_run(pipeline_run, task: TaskInfo, manifest, spec, *, secrets=None, cached=False, known=None):
    """Create or update the TaskRun of (run, step); a late event never rolls a finished try back.

    ``cached``: a task event may reuse the row this process wrote for the same task's previous event.
    ``known``: step id -> TaskRun of this run, read in one query by the caller (reconciliation).
    """
    from django.db import IntegrityError

    from django_etl.runs.models import TaskRun

    step_id = resolve_step_id(pipeline_run, task, spec)
    if step_id is None:
        log.info("write-back: task %s is not a step of pipeline %s", task.task_id, pipeline_run.pipeline_id)
        return None
    cache = delivery.state().task_row
    rows = TaskRun.objects.using(ALIAS)
    key = {
        "pipeline_run_id": pipeline_run.pk,
        "pipeline_step_id": step_id,
        "run_started_at": pipeline_run.started_at,
    }
    cache_key = (pipeline_run.pk, step_id)
    task_run = cache.get(cache_key) if cached else None
    if known is not None:
        task_run = known.get(step_id)
    # A try's first event usually finds no row: insert straight away and read only on conflict.
    elif task_run is None and task.event != "execute":
        task_run = rows.filter(**key).first()
    if task_run is None:
        task_run = TaskRun(**key)
        task_run.pipeline_run = pipeline_run
        _apply(task_run, task, manifest, pipeline_run, secrets)
        try:
            # Autocommit, no transaction: a failed insert leaves nothing to roll back.
            task_run.save(using=ALIAS, force_insert=True)
            return cache.put(cache_key, task_run)
        except IntegrityError:  # recorded meanwhile by another process, or the step was deleted
            task_run = rows.filter(**key).first()
            if task_run is None:
                log.warning(
                    "write-back: step %s no longer exists; task %s not recorded", step_id, task.task_id
                )
                return None
    task_run.pipeline_run = pipeline_run
    changed = _apply(task_run, task, manifest, pipeline_run, secrets)
    if changed:
        task_run.save(using=ALIAS, update_fields=changed)
    return cache.put(cache_key, task_run)


def rows_of_run(pipeline_run) -> dict:
    """step id -> TaskRun of one run, in one query."""
    from django_etl.runs.models import TaskRun

    rows = TaskRun.objects.using(ALIAS).filter(
        pipeline_run=pipeline_run, run_started_at=pipeline_run.started_at
    )
    return {str(row.pipeline_step_id): row for row in rows}


def _apply(task_run, task: TaskInfo, manifest, pipeline_run, secrets) -> list[str]:
    changed: set[str] = set()

    def put(field: str, value: Any) -> None:
        if getattr(task_run, field) != value:
            setattr(task_run, field, value)
            changed.add(field)

    try_number = int(task.try_number or 0)
    recorded_try = int((task_run.metrics or {}).get("try_number") or 0)
    status = task_status(task)
    if status == RunStatus.FAILED and (manifest or {}).get("error_type") in TIMEOUT_ERRORS:
        # Reconciliation and catch-up know only Airflow's "failed"; the try's manifest says it timed out.
        status = RunStatus.TIMEOUT
    stale = try_number < recorded_try or (
        try_number == recorded_try and task_run.status in FINISHED and status not in FINISHED
    )
    if task_run.status == RunStatus.TIMEOUT and status == RunStatus.FAILED and try_number == recorded_try:
        stale = True  # the scheduler only knows "failed"; the task itself said why
    if not stale:
        put("status", status)
        put("retry_count", max(task_run.retry_count or 0, try_number - 1))
        if status in FINISHED and task.end_date:
            put("completed_at", task.end_date)
        elif status not in FINISHED:
            put("completed_at", None)
    # Airflow stamps a start on tasks it skips or marks upstream-failed; they never ran (docs/partitioning.md).
    start = task.start_date if ran(task, status) else None
    if start and (task_run.started_at is None or start < task_run.started_at):
        put("started_at", start)
    metrics = dict(task_run.metrics or {})
    metrics["try_number"] = max(try_number, recorded_try)
    metrics["max_tries"] = task.max_tries
    if manifest:
        metrics.update(manifest.get("metrics") or {})
        checks = manifest.get("checks") or []
        if checks:
            metrics["checks_total"] = len(checks)
            metrics["checks_failed"] = sum(1 for c in checks if not c.get("passed"))
        locations = manifest.get("locations") or {}
        put("input_data", _datasets(manifest.get("inputs"), locations.get("source")))
        put("output_data", _datasets(manifest.get("outputs"), locations.get("target")))
    if metrics != task_run.metrics:
        put("metrics", metrics)
    if not stale and (status in FINISHED or task.event == "retry") and try_number > 0:
        if secrets is None:
            secrets = secrets_of_pipeline(pipeline_run.pipeline_id)
        # Each try keeps its own section (the task-run page shows every try's log).
        this_try = task_logs.capture(
            pipeline_run.airflow_dag_id, pipeline_run.airflow_run_id, task, manifest, secrets
        )
        kept = logview.split_tries(task_run.logs, untitled_try=try_number).get(try_number)
        # The log the task's own process read (its worker) beats a later summary from a process on another
        # machine (the scheduler's reconciliation, the catch-up), which cannot read the worker's file.
        if not (task_logs.is_summary(this_try) and kept and not task_logs.is_summary(kept)):
            put("logs", logview.with_try(task_run.logs, try_number, this_try))
    return sorted(changed)


def ran(task: TaskInfo, status: RunStatus) -> bool:
    """Whether this try started: not one the scheduler skipped or marked upstream-failed without running it.

    A task that raised AirflowSkipException did run (its try number is 1 or more); one skipped by a branch
    or a trigger rule, or upstream-failed, was never queued (try number 0).
    """
    return status not in NEVER_RUN or int(task.try_number or 0) > 0


def _datasets(entries: Any, location: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Dataset references only (name, uri, rows, schema): never row data; ``location`` is the table, file or
    object an extract read or a load wrote, by OpenLineage name (``airflow_plugin.openlineage``)."""
    if not entries and not location:
        return None
    data: dict[str, Any] = {
        "datasets": [
            {k: e.get(k) for k in DATASET_KEYS if k in e} for e in entries or [] if isinstance(e, dict)
        ]
    }
    if location:
        data["location"] = location
    return data


def secrets_of_pipeline(pipeline_id) -> list[str]:
    """The secret values of the pipeline organization's credentials (the one masking rule), to mask logs."""
    from django_etl.connectors.models import Credential
    from django_etl.pipelines.models import Pipeline

    cache = delivery.state().secrets
    cached = cache.get(str(pipeline_id))
    if cached and time.monotonic() - cached[0] < SECRETS_CACHE_SECONDS:
        return cached[1]
    values: list[str] = []
    organization_id = (
        Pipeline.objects.using(ALIAS).filter(pk=pipeline_id).values_list("organization_id", flat=True).first()
    )
    for credential in Credential.objects.using(ALIAS).filter(organization_id=organization_id):
        try:
            values.extend(secret_values(credential.decrypt_data()))
        except Exception:  # an undecryptable credential cannot leak into a log either
            continue
    cache[str(pipeline_id)] = (time.monotonic(), values)
    return values
