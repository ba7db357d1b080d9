"""Alerts the recorder raises: failed tries, failed pipelines, failed data-quality checks; each exactly once."""

from __future__ import annotations

from typing import Any

from airflow_plugin.writeback.delivery import ALIAS
from airflow_plugin.writeback.events import RunInfo, TaskInfo
from django_etl.monitoring.choices import AlertLevel, AlertType

KILLED_MESSAGE = "ended failed without reporting an error (killed, out of memory, or lost)"
# Checks a load step records (steps/load.py): their own message says what was refused or changed.
LOAD_CHECKS = {"allow_empty", "schema_change"}
LOAD_CHECK_DETAILS = ("columns", "added", "missing", "retyped", "on_schema_change")


def ensure_alert(pipeline_run, task_run, *, alert_type, level, key, message, metadata) -> bool:
    """Create the alert unless one with the same ``event_key`` exists for this run. True when created."""
    from django_etl.monitoring.models import Alert

    alerts = Alert.objects.using(ALIAS)
    if alerts.filter(pipeline_run=pipeline_run, alert_type=alert_type, metadata__event_key=key).exists():
        return False
    alerts.create(
        pipeline_run=pipeline_run,
        task_run=task_run,
        organization_id=organization_of(pipeline_run),
        alert_type=alert_type,
        level=level,
        message=message[:4000],
        metadata={**metadata, "event_key": key},
    )
    return True


def organization_of(pipeline_run) -> object:
    """Every alert names its organization (issue 12), so the admin scopes run and run-less alerts alike."""
    from django_etl.pipelines.models import Pipeline

    if pipeline_run is None:
        return None
    return (
        Pipeline.objects.using(ALIAS)
        .filter(pk=pipeline_run.pipeline_id)
        .values_list("organization_id", flat=True)
        .first()
    )


def task_failure_alert(pipeline_run, task_run, run: RunInfo, task: TaskInfo, manifest) -> None:
    """TASK_FAILED: a warning for a try that will be retried, an error for the final failure."""
    try_number = int(task.try_number or 0)
    retrying = task.event == "retry" or task.state == "up_for_retry"
    error = task.error or (manifest or {}).get("error") or KILLED_MESSAGE
    step = task_run.pipeline_step
    if retrying:
        level, kind = AlertLevel.WARNING, "retry"
        message = f"Step {step.name!r} failed on try {try_number} and will be retried: {error}"
    else:
        level, kind = AlertLevel.ERROR, "failed"
        message = f"Step {step.name!r} failed for good on try {try_number}: {error}"
    ensure_alert(
        pipeline_run,
        task_run,
        alert_type=AlertType.TASK_FAILED,
        level=level,
        key=f"task_{kind}:{task.task_id}:{try_number}",
        message=message,
        metadata={
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "task_id": task.task_id,
            "step_id": str(step.pk),
            "step_name": step.name,
            "try_number": try_number,
            "max_tries": task.max_tries,
            "error": error,
            "error_type": task.error_type,
        },
    )


def quality_alerts(pipeline_run, task_run, task: TaskInfo, manifest: dict[str, Any] | None) -> None:
    """DATA_QUALITY: one alert per failed check of a validate step's manifest (also when the step failed)."""
    if not manifest:
        return
    for check in manifest.get("checks") or []:
        if check.get("passed", True):
            continue
        step = task_run.pipeline_step
        name = check.get("name") or check.get("check") or "check"
        severity = check.get("severity") or "error"
        dataset = ", ".join(i.get("dataset", "") for i in manifest.get("inputs") or [] if isinstance(i, dict))
        if check.get("check") in LOAD_CHECKS:
            message = f"Step {step.name!r}: {check.get('message')}"
        else:
            message = (
                f"Check {name!r} of step {step.name!r} failed: {check.get('failing_count')} failing rows"
                + (f" in {dataset}" if dataset else "")
            )
        ensure_alert(
            pipeline_run,
            task_run,
            alert_type=AlertType.DATA_QUALITY,
            level=AlertLevel.ERROR if severity == AlertLevel.ERROR else AlertLevel.WARNING,
            key=f"data_quality:{task.task_id}:{name}",
            message=message,
            metadata={
                "task_id": task.task_id,
                "step_id": str(step.pk),
                "check": check.get("check"),
                "name": name,
                "severity": severity,
                "failing_count": check.get("failing_count"),
                "sample_keys": (check.get("sample_keys") or [])[:20],
                "dataset": dataset,
                **{k: check[k] for k in LOAD_CHECK_DETAILS if k in check},
            },
        )
