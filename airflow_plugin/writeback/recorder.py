"""The only writer of PipelineRun, TaskRun, Alert and DataLineage: Airflow events (typed records) become rows.

Entry points (``run_started``, ``task_event``, ``run_finished``, ``run_closed``) are called by the callbacks
and the listener of this package; they never raise and wait at most ETL_RECORDER_TIMEOUT (``delivery``).
Rows are keyed by Airflow's identity, so duplicate events, retries and re-runs update instead of adding:
PipelineRun by (airflow_dag_id, airflow_run_id); TaskRun by (pipeline_run, pipeline_step, run_started_at);
alerts by their condition (one open alert per problem) and an ``event_key`` per event (counted once); lineage
by (source_task, target_task). See docs/write-back.md and docs/alerts.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow_plugin.writeback import alerts, delivery, health
from airflow_plugin.writeback.alerts import ensure_alert, quality_alerts, task_failure_alert
from airflow_plugin.writeback.delivery import ALIAS
from airflow_plugin.writeback.events import RunInfo, TaskInfo
from airflow_plugin.writeback.lineage import record_lineage
from airflow_plugin.writeback.tasks import read_manifest, rows_of_run, secrets_of_pipeline, upsert_task_run
from django_etl.connectors.secrets import mask_sensitive_keys
from django_etl.monitoring.choices import AlertLevel, AlertType
from django_etl.runs.choices import RunStatus, TriggerType

log = logging.getLogger("airflow_plugin.writeback")

SCHEDULED_RUN_TYPES = {"scheduled", "backfill", "asset_triggered", "asset_materialization"}
# The key a run's conf carries when the platform's webhook started it (contract with the webhook view).
WEBHOOK_CONF_KEY = "etl_trigger"
_OPEN = {RunStatus.RUNNING, RunStatus.PENDING}
_UNSUCCESSFUL = {RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.CANCELLED}


# ---------------------------------------------------------------- entry points (never raise)
def run_started(run: RunInfo, spec: dict[str, Any] | None = None) -> None:
    delivery.deliver(record_run, run, spec)


def task_event(run: RunInfo, task: TaskInfo, spec: dict[str, Any] | None = None) -> None:
    delivery.deliver(record_task, run, task, spec)


def run_finished(
    run: RunInfo, tasks: list[TaskInfo], msg: str = "", spec: dict[str, Any] | None = None
) -> None:
    delivery.deliver(reconcile, run, tasks, msg, spec)


def run_closed(run: RunInfo, msg: str = "") -> None:
    delivery.deliver(settle_open_run, run, msg)


# ---------------------------------------------------------------- the work (runs on the worker thread)
def record_run(run: RunInfo, spec: dict[str, Any] | None = None, *, cached: bool = False):
    """Create or update the PipelineRun of an Airflow DAG run; None when the DAG is not a pipeline's.

    ``cached``: a task event may reuse the row this process read for the run's previous event (a task
    process reports its own try a few times in a row); run-level events always read it afresh.
    """
    from django.db import IntegrityError, transaction

    from django_etl.pipelines.models import Pipeline
    from django_etl.pipelines.naming import pipeline_id_from_dag_id
    from django_etl.runs.models import PipelineRun

    spec = spec or {}
    pipeline_id = (spec.get("pipeline") or {}).get("id") or pipeline_id_from_dag_id(run.dag_id)
    if pipeline_id is None:
        return None
    cache = delivery.state().run_row
    runs = PipelineRun.objects.using(ALIAS)
    key = {"airflow_dag_id": run.dag_id, "airflow_run_id": run.run_id}
    existing = cache.get((run.dag_id, run.run_id)) if cached else None
    if existing is None:
        existing = runs.filter(**key).first()
    if existing is None:
        pipeline = Pipeline.objects.using(ALIAS).filter(pk=pipeline_id).first()
        if pipeline is None:
            log.warning("write-back: no pipeline %s for DAG %s; run not recorded", pipeline_id, run.dag_id)
            return None
        started = run.start_date or datetime.now(UTC)
        try:
            with transaction.atomic(using=ALIAS):
                created = runs.create(
                    pipeline=pipeline,
                    status=_run_status_while_running(run),
                    started_at=started,
                    trigger_type=trigger_type(run),
                    # Who triggered is known only for runs Django created (Run now, the webhook): an
                    # Airflow user name is never matched to a Django account (context keeps the name).
                    triggered_by=None,
                    context=_context({}, run, spec, PipelineRun(pipeline=pipeline)),
                    **key,
                )
                return cache.put((run.dag_id, run.run_id), created)
        except IntegrityError:  # another process recorded it first
            existing = runs.get(**key)
    previous_status = existing.status
    changed = _merge_run(existing, run, spec)
    if changed:
        existing.save(using=ALIAS, update_fields=changed)
        if previous_status in _UNSUCCESSFUL and existing.status in _OPEN:
            alerts.supersede_run_failure(existing)  # its failed tasks were cleared: the run goes again
    return cache.put((run.dag_id, run.run_id), existing)


def record_task(run: RunInfo, task: TaskInfo, spec: dict[str, Any] | None = None) -> None:
    """One task event (execute, success, retry, failure, skipped) from a callback or the listener."""
    pipeline_run = record_run(run, spec, cached=True)
    if pipeline_run is None:
        return
    manifest = None
    if task.event in {"success", "failure", "retry", "skipped"}:
        manifest = read_manifest(run.dag_id, run.run_id, task.task_id)
    task_run = upsert_task_run(pipeline_run, task, manifest, spec, cached=True)
    if task_run is None:
        return
    if task.event in {"retry", "failure"}:
        # A failure reported for a try that wrote no manifest (a callback run for a killed task) is a kill too.
        killed = (
            health.killed_try(pipeline_run, task_run, run, task, manifest)
            if task.event == "failure"
            else None
        )
        task_failure_alert(pipeline_run, task_run, run, task, manifest, error=killed)
    elif task.event == "success" and int(task.try_number or 0) > 1:
        # A success after failed tries (a retry, a cleared task) resolves its alerts at once; any other
        # success waits for the end of the run, which resolves every successful step in one statement
        # (one read per task event less: bench/writeback.py, docs/benchmarks.md).
        alerts.resolve_step_failures(pipeline_run, [task_run.pipeline_step_id])
    elif task.event == "execute" and int(task.try_number or 0) > 1:
        alerts.supersede_step_failure(pipeline_run, task_run, task)
    quality_alerts(pipeline_run, task_run, task, manifest)


def reconcile(run: RunInfo, tasks: list[TaskInfo], msg: str = "", spec: dict[str, Any] | None = None):
    """End of a DAG run: every task instance gets its TaskRun, then lineage, alerts and the run's outcome.

    Returns task_id -> TaskRun of the run (None when the DAG is not a pipeline's).
    """
    pipeline_run = record_run(run, spec)
    if pipeline_run is None:
        return None
    task_runs, manifests = record_task_instances(pipeline_run, run, tasks, spec)
    record_lineage(pipeline_run, task_runs, manifests)
    _settle(pipeline_run, run, tasks, task_runs, manifests, msg, reconciled=True)
    health.after_run(pipeline_run, task_runs, manifests)  # resources and the baseline (docs/alerts.md)
    if pipeline_run.status == RunStatus.SUCCESS:
        _delete_staged_run(run)
    return task_runs


def record_task_instances(pipeline_run, run: RunInfo, tasks: list[TaskInfo], spec: dict[str, Any] | None):
    """A TaskRun for each task instance, with its manifest's data and the alerts its state calls for."""
    secrets = secrets_of_pipeline(pipeline_run.pipeline_id)
    known = rows_of_run(pipeline_run)
    manifests: dict[str, dict[str, Any]] = {}
    task_runs = {}
    succeeded = []
    for task in tasks:
        manifest = read_manifest(run.dag_id, run.run_id, task.task_id)
        if manifest is not None:
            manifests[task.task_id] = manifest
        task_run = upsert_task_run(pipeline_run, task, manifest, spec, secrets=secrets, known=known)
        if task_run is None:
            continue
        task_runs[task.task_id] = task_run
        if task.state == "failed":
            # A try that wrote no manifest was killed: recorded so, out of memory only on the OS's word.
            killed = health.killed_try(pipeline_run, task_run, run, task, manifest)
            task_failure_alert(pipeline_run, task_run, run, task, manifest, error=killed)
        elif task.state == "success":
            succeeded.append(task_run.pipeline_step_id)
        quality_alerts(pipeline_run, task_run, task, manifest)
    if succeeded:  # one statement for every step that succeeded (its success callback may have been lost)
        alerts.resolve_step_failures(pipeline_run, succeeded)
    return task_runs, manifests


def settle_open_run(run: RunInfo, msg: str = "") -> None:
    """Safety net of the DAG-level callbacks: settle a finished run the listener left open.

    The scheduler's reconciliation normally settled it already (then this reads one row and stops); if
    that write was lost, the run's outcome is settled from the task runs Django holds.
    """
    if run.state not in {"success", "failed"}:
        return
    pipeline_run = record_run(run)
    if pipeline_run is None or pipeline_run.status not in _OPEN:
        return
    steps = (pipeline_run.context or {}).get("steps") or {}
    task_of_step = {entry.get("id"): task_id for task_id, entry in steps.items()}
    task_runs = {
        task_of_step.get(step_id, step_id): row for step_id, row in rows_of_run(pipeline_run).items()
    }
    tasks = [TaskInfo(task_id=task_id, state=row.status) for task_id, row in task_runs.items()]
    _settle(pipeline_run, run, tasks, task_runs, {}, msg, reconciled=False)


# ---------------------------------------------------------------- PipelineRun details
def trigger_type(run: RunInfo) -> TriggerType:
    """scheduled / manual / api / webhook, from Airflow's run type, who triggered it and the run's conf."""
    if (run.conf or {}).get(WEBHOOK_CONF_KEY) == TriggerType.WEBHOOK:
        return TriggerType.WEBHOOK
    if (run.run_type or "") in SCHEDULED_RUN_TYPES:
        return TriggerType.SCHEDULED
    if run.triggered_by == "rest_api":
        return TriggerType.API
    return TriggerType.MANUAL


def _run_status_while_running(run: RunInfo) -> RunStatus:
    return RunStatus.PENDING if run.state in {"queued", None} else RunStatus.RUNNING


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _context(current: dict[str, Any], run: RunInfo, spec: dict[str, Any], pipeline_run=None) -> dict:
    """PipelineRun.context: what the run executed, so later edits of the pipeline never rewrite it."""
    context = dict(current)
    context.setdefault("conf", mask_sensitive_keys(run.conf or {}))
    context.setdefault("logical_date", _iso(run.logical_date))
    context.setdefault("run_after", _iso(run.run_after))
    context.setdefault(
        "data_interval", {"start": _iso(run.data_interval_start), "end": _iso(run.data_interval_end)}
    )
    context.setdefault("run_type", run.run_type)
    if run.triggered_by:
        context["airflow_triggered_by"] = run.triggered_by
    if run.triggering_user_name:
        context.setdefault("triggering_user_name", run.triggering_user_name)
    facts = spec.get("pipeline") or {}
    if facts.get("version") and context.get("spec_source") != "dag":
        # The operator's compiled spec is what really ran: it replaces the Django-side guess.
        context.update(pipeline_version=facts["version"], spec_hash=facts.get("spec_hash"), spec_source="dag")
    elif "pipeline_version" not in context and pipeline_run is not None:
        # Fetched only here: the scheduler's guess when no task has reported the compiled spec yet.
        context.update(pipeline_version=pipeline_run.pipeline.version, spec_hash=None, spec_source="django")
    if spec.get("steps") and not context.get("steps"):
        context["steps"] = spec["steps"]
    return context


def _merge_run(pipeline_run, run: RunInfo, spec: dict[str, Any]) -> list[str]:
    changed = []
    context = _context(pipeline_run.context or {}, run, spec, pipeline_run)
    if context != pipeline_run.context:
        pipeline_run.context = context
        changed.append("context")
    # A run Django created (Run now, the webhook) already knows who and how; Airflow's view never overrides it.
    from_django = (pipeline_run.context or {}).get("origin") == "django"
    if run.triggered_by and not from_django:
        kind = trigger_type(run)
        if kind != pipeline_run.trigger_type:
            pipeline_run.trigger_type = kind
            changed.append("trigger_type")
    rerun = run.state == "running" and run.event == "dag_run_running"
    if pipeline_run.status == RunStatus.PENDING or (rerun and pipeline_run.status != RunStatus.RUNNING):
        pipeline_run.status = _run_status_while_running(run)
        if rerun:
            pipeline_run.completed_at = None
            changed.append("completed_at")
        changed.append("status")
    return changed


def _settle(
    pipeline_run, run: RunInfo, tasks: list[TaskInfo], task_runs, manifests, msg: str, *, reconciled: bool
) -> None:
    """The run's status, end and metrics; ``reconciled``: every task instance of the run was seen (not only
    the task runs Django held), which the catch-up reconciler reads as "nothing left to fill"."""
    states = [t.state or "none" for t in tasks]
    if run.state == "success":
        status = RunStatus.SUCCESS
    elif run.state == "failed":
        status = RunStatus.FAILED
        if msg == "timed_out" or any(tr.status == RunStatus.TIMEOUT for tr in task_runs.values()):
            status = RunStatus.TIMEOUT
        elif _stopped(msg, tasks):
            status = RunStatus.CANCELLED
    else:
        status = _run_status_while_running(run)
    end = run.end_date or (datetime.now(UTC) if status not in _OPEN else None)
    pipeline_run.status = status
    pipeline_run.completed_at = end
    pipeline_run.metrics = {**_run_metrics(pipeline_run, states, manifests, end), "reconciled": reconciled}
    pipeline_run.save(using=ALIAS, update_fields=["status", "completed_at", "metrics"])
    if status == RunStatus.SUCCESS:
        alerts.resolve_pipeline_failure(pipeline_run)
    if status in _UNSUCCESSFUL:
        failed = sorted(t.task_id for t in tasks if t.state == "failed")
        not_run = sorted(t.task_id for t in tasks if t.state in {"upstream_failed", "skipped"})
        level = AlertLevel.CRITICAL if status != RunStatus.CANCELLED else AlertLevel.ERROR
        reason = {RunStatus.TIMEOUT: "timed out", RunStatus.CANCELLED: "was cancelled"}.get(status, "failed")
        ensure_alert(
            pipeline_run,
            None,
            alert_type=AlertType.PIPELINE_FAILED,
            level=level,
            key=f"pipeline_failed:{run.dag_id}:{run.run_id}:{_iso(end)}",
            condition=alerts.pipeline_failure_condition(pipeline_run.pipeline_id),
            message=f"Pipeline {pipeline_run.pipeline.name!r} {reason} (run {run.run_id}); "
            f"failed tasks: {', '.join(failed) or 'none'}; not run: {', '.join(not_run) or 'none'}.",
            metadata={
                "dag_id": run.dag_id,
                "run_id": run.run_id,
                "status": str(status),
                "airflow_msg": msg,
                "failed_tasks": failed,
                "not_run_tasks": not_run,
                "tasks_by_state": pipeline_run.metrics.get("tasks_by_state"),
            },
        )


def _stopped(msg: str, tasks: list[TaskInfo]) -> bool:
    """A failed run someone stopped: marked failed while some tasks had not succeeded.

    Without a teardown Airflow says so ("manually set to failed"). With a final notify (a teardown) the run
    is failed by the run-outcome task instead, and what shows it was stopped are the steps Airflow skipped
    when it was marked: pipeline steps are never skipped otherwise (no branching).
    """
    from airflow_plugin.outcome import RUN_OUTCOME_TASK_ID

    steps = [t for t in tasks if t.task_id != RUN_OUTCOME_TASK_ID]
    if "manually set" in (msg or ""):
        return any((t.state or "none") != "success" for t in steps)
    return any(t.state == "skipped" for t in steps)


def _run_metrics(pipeline_run, states: list[str], manifests: dict[str, dict], end) -> dict[str, Any]:
    by_state: dict[str, int] = {}
    for state in states:
        by_state[state] = by_state.get(state, 0) + 1
    rows_extracted = rows_loaded = 0
    for manifest in manifests.values():
        rows = int((manifest.get("metrics") or {}).get("rows_out") or 0)
        if manifest.get("step_type") == "extract":
            rows_extracted += rows
        elif manifest.get("step_type") == "load":
            rows_loaded += int((manifest.get("metrics") or {}).get("rows_in") or rows)
    duration = (end - pipeline_run.started_at).total_seconds() if end and pipeline_run.started_at else None
    return {
        **(pipeline_run.metrics or {}),
        "duration_seconds": duration,
        "rows_extracted": rows_extracted,
        "rows_loaded": rows_loaded,
        "rows_moved": rows_loaded or rows_extracted,
        "tasks_by_state": by_state,
        "task_count": len(states),
    }


def _delete_staged_run(run: RunInfo) -> None:
    try:
        from django_etl.dataplane.staging import delete_run

        delete_run(run.dag_id, run.run_id)
    except Exception as exc:  # staged data left behind is purged later; never fail the write-back
        log.warning("write-back: staged data of %s not deleted: %s", run.run_id, exc)
