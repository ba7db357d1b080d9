"""Alerts the recorder raises and resolves: failed tries, failed pipelines, failing data-quality checks.

Each goes through the lifecycle (``django_etl.monitoring.lifecycle``): one open alert per condition — a step's
failures (``task_failed:<pipeline>:<step>``), a pipeline's failed runs (``pipeline_failed:<pipeline>``), one
check of a step (``data_quality:<pipeline>:<step>:<check>``) — counted once per event, resolved by a later
success (or a passing check), superseded when failed tasks are cleared and run again.
"""

from __future__ import annotations

from typing import Any

from airflow_plugin.writeback.delivery import ALIAS
from airflow_plugin.writeback.events import RunInfo, TaskInfo
from django_etl.monitoring.choices import AlertLevel, AlertType

KILLED_MESSAGE = "ended failed without reporting an error (killed, out of memory, or lost)"
# Checks a load step records (steps/load.py): their own message says what was refused or changed.
LOAD_CHECKS = {"allow_empty", "schema_change"}
LOAD_CHECK_DETAILS = ("columns", "added", "missing", "retyped", "on_schema_change")


def ensure_alert(pipeline_run, task_run, *, alert_type, level, key, condition, message, metadata) -> bool:
    """Raise the alert of ``condition`` for event ``key`` through the lifecycle (monitoring/lifecycle.py).

    An open alert of the same condition is updated (one more occurrence) instead of adding one; the same
    event (``key``, within this run) reported twice counts once. True when a new alert was created.
    """
    from django_etl.monitoring.lifecycle import raise_alert

    _, created = raise_alert(
        alert_type=alert_type,
        level=level,
        condition_key=condition,
        message=message,
        metadata={**metadata, "event_key": key},
        organization_id=organization_of(pipeline_run),
        pipeline_run=pipeline_run,
        task_run=task_run,
        using=ALIAS,
    )
    return created


def step_failure_condition(pipeline_run, step_id) -> str:
    """TASK_FAILED's condition: the step fails (any try, any run) until a later success resolves it."""
    from django_etl.monitoring.lifecycle import step_condition

    return step_condition(AlertType.TASK_FAILED, pipeline_run.pipeline_id, step_id)


def pipeline_failure_condition(pipeline_id) -> str:
    from django_etl.monitoring.lifecycle import condition_key

    return condition_key(AlertType.PIPELINE_FAILED, pipeline_id)


def check_condition(pipeline_run, step_id, name: str) -> str:
    from django_etl.monitoring.lifecycle import step_condition

    return step_condition(AlertType.DATA_QUALITY, pipeline_run.pipeline_id, step_id, name)


def resolve_step_failures(pipeline_run, step_ids) -> int:
    """Steps succeeded: their open failure alerts raised by this run or an earlier one are resolved.

    Alerts last seen in a later run stay open (a late success event of an older run resolves nothing).
    """
    from django_etl.monitoring.lifecycle import LATER_SUCCESS, resolve_alerts

    return resolve_alerts(
        condition_keys=[step_failure_condition(pipeline_run, step_id) for step_id in step_ids],
        alerts=_not_newer_than(pipeline_run),
        how=LATER_SUCCESS,
        pipeline_run=pipeline_run,
        using=ALIAS,
    )


def resolve_pipeline_failure(pipeline_run) -> int:
    """The run succeeded: the pipeline's open PIPELINE_FAILED alert (of this or an earlier run) is resolved."""
    from django_etl.monitoring.lifecycle import LATER_SUCCESS, resolve_alerts

    return resolve_alerts(
        condition_keys=[pipeline_failure_condition(pipeline_run.pipeline_id)],
        alerts=_not_newer_than(pipeline_run),
        how=LATER_SUCCESS,
        pipeline_run=pipeline_run,
        using=ALIAS,
    )


def supersede_step_failure(pipeline_run, task_run, task: TaskInfo) -> int:
    """A new try of a step that had failed for good in this run: it was cleared and re-runs.

    Its failure alert is resolved as superseded (the re-run raises its own if it fails again). A retry
    follows a *retrying* failure, whose alert stays open and counts the next try.
    """
    from django_etl.monitoring.lifecycle import SUPERSEDED, resolve_alerts
    from django_etl.monitoring.models import Alert

    try_number = int(task.try_number or 0)
    open_alerts = Alert.objects.using(ALIAS).filter(
        condition_key=step_failure_condition(pipeline_run, task_run.pipeline_step_id),
        is_resolved=False,
        pipeline_run=pipeline_run,
    )
    superseded = [
        alert.pk
        for alert in open_alerts
        if (alert.metadata or {}).get("final")
        and int((alert.metadata or {}).get("try_number") or 0) < try_number
    ]
    if not superseded:
        return 0
    return resolve_alerts(
        alerts=Alert.objects.using(ALIAS).filter(pk__in=superseded),
        how=SUPERSEDED,
        pipeline_run=pipeline_run,
        note=f"task {task.task_id} cleared and run again (try {try_number})",
        using=ALIAS,
    )


def supersede_run_failure(pipeline_run) -> int:
    """A finished, unsuccessful run runs again (its tasks were cleared): its PIPELINE_FAILED alert is superseded."""
    from django_etl.monitoring.lifecycle import SUPERSEDED, resolve_alerts
    from django_etl.monitoring.models import Alert

    return resolve_alerts(
        condition_keys=[pipeline_failure_condition(pipeline_run.pipeline_id)],
        alerts=Alert.objects.using(ALIAS).filter(pipeline_run=pipeline_run),
        how=SUPERSEDED,
        pipeline_run=pipeline_run,
        note="the run's tasks were cleared and run again",
        using=ALIAS,
    )


def _not_newer_than(pipeline_run):
    from django.db.models import Q

    from django_etl.monitoring.models import Alert

    return Alert.objects.using(ALIAS).filter(
        Q(pipeline_run__isnull=True) | Q(pipeline_run__started_at__lte=pipeline_run.started_at)
    )


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


def task_failure_alert(
    pipeline_run, task_run, run: RunInfo, task: TaskInfo, manifest, *, error: str | None = None
) -> None:
    """TASK_FAILED: a warning for a try that will be retried, an error for the final failure.

    ``error``: what the recorder found out itself (a killed try: ``health.killed_try``).
    """
    try_number = int(task.try_number or 0)
    retrying = task.event == "retry" or task.state == "up_for_retry"
    error = task.error or error or (manifest or {}).get("error") or KILLED_MESSAGE
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
        condition=step_failure_condition(pipeline_run, step.pk),
        message=message,
        metadata={
            "final": not retrying,
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
    """DATA_QUALITY: one alert per failing check of a step (validate, load), open until the check passes.

    A check that passes resolves its open alert (raised by this run or an earlier one).
    """
    if not manifest:
        return
    passed = []
    for check in manifest.get("checks") or []:
        step = task_run.pipeline_step
        name = check.get("name") or check.get("check") or "check"
        if check.get("passed", True):
            passed.append(check_condition(pipeline_run, step.pk, name))
            continue
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
            condition=check_condition(pipeline_run, step.pk, name),
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
    if passed:
        from django_etl.monitoring.lifecycle import CONDITION_CLEARED, resolve_alerts

        resolve_alerts(
            condition_keys=passed,
            alerts=_not_newer_than(pipeline_run),
            how=CONDITION_CLEARED,
            pipeline_run=pipeline_run,
            using=ALIAS,
        )
