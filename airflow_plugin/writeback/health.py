"""The recorder's health checks: how a try that wrote no manifest ended, resource alerts, the run's baseline.

Called by reconciliation (``recorder.reconcile`` / ``record_task_instances``), after the task runs are written:

- :func:`killed_try` — a failed task whose latest try wrote no result manifest was *killed* (SIGKILL, a lost
  worker): its TaskRun's ``metrics`` say so (``ended: "killed"``, ``out_of_memory``: True only on the OS's
  word, False when the OS recorded no OOM kill, None when it cannot be asked; ``kill_evidence``), and the
  kernel's OOM kill raises RESOURCE_EXHAUSTION (``django_etl.monitoring.resource_alerts``);
- :func:`after_run` — each task's manifest against the memory and staging thresholds, then the run against
  its pipeline's baseline (``django_etl.monitoring.performance``).

Neither may fail the write-back: each logs its own error and returns.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from airflow_plugin.writeback.delivery import ALIAS
from airflow_plugin.writeback.events import RunInfo, TaskInfo

log = logging.getLogger("airflow_plugin.writeback")

KILLED = "killed"
KILL_KEYS = ("ended", "killed_try", "out_of_memory", "kill_evidence")


def wrote_manifest(task: TaskInfo, manifest: dict[str, Any] | None) -> bool:
    """Whether the task's latest try wrote its result manifest (an older try's manifest does not count)."""
    if manifest is None:
        return False
    written_by = manifest.get("try_number")
    return written_by is None or int(written_by) >= int(task.try_number or 0)


def killed_try(pipeline_run, task_run, run: RunInfo, task: TaskInfo, manifest) -> str | None:
    """Record a failed try that wrote no manifest as killed; the error text for its TASK_FAILED alert, or None."""
    if int(task.try_number or 0) < 1 or task.error or wrote_manifest(task, manifest):
        return None
    try:
        return _record_killed(pipeline_run, task_run, run, task)
    except Exception as exc:  # never fail the write-back over the diagnosis
        log.warning(
            "write-back: how task %s ended not recorded: %s: %s", task.task_id, type(exc).__name__, exc
        )
        return None


def _record_killed(pipeline_run, task_run, run: RunInfo, task: TaskInfo) -> str:
    from airflow_plugin.resources import kill_verdict
    from django_etl.dataplane.staging import read_attempt
    from django_etl.monitoring.resource_alerts import check_killed

    try_number = int(task.try_number or 0)
    attempt = read_attempt(run.dag_id, run.run_id, task.task_id)
    if attempt is not None and int(attempt.get("try_number") or 0) != try_number:
        attempt = None  # an older try's start: it says nothing of this one
    verdict = {**kill_verdict(attempt), "try_number": try_number}
    metrics = dict(task_run.metrics or {})
    metrics.update(
        ended=KILLED,
        killed_try=try_number,
        out_of_memory=verdict["out_of_memory"],
        kill_evidence=verdict["evidence"],
    )
    if metrics != task_run.metrics:
        task_run.metrics = metrics
        task_run.save(using=ALIAS, update_fields=["metrics"])
    name = task_run.pipeline_step.name
    check_killed(
        pipeline_run,
        task_run,
        task.task_id,
        verdict,
        organization_id=_organization(pipeline_run),
        step_name=name,
        using=ALIAS,
    )
    said = "ended failed without reporting an error or writing its result"
    if verdict["out_of_memory"] is True:
        return f"{said}: killed by the kernel's out-of-memory killer ({verdict['evidence']})"
    if verdict["out_of_memory"] is False:
        return (
            f"{said}: killed (SIGKILL or a lost worker); the kernel recorded no out-of-memory kill of it "
            f"({verdict['evidence']})"
        )
    return f"{said}: killed or lost; whether for lack of memory is unknown ({verdict['evidence']})"


def was_killed(task_run) -> bool:
    """Whether the task run's latest try is the one recorded killed (a later try, after a clear, is not)."""
    metrics = task_run.metrics or {}
    return metrics.get("ended") == KILLED and metrics.get("killed_try") == metrics.get("try_number")


def forget_older_kill(task_run) -> None:
    """A try after the killed one ran (the task was cleared): the kill is history, not this try's end."""
    metrics = task_run.metrics or {}
    if metrics.get("ended") != KILLED or was_killed(task_run):
        return
    task_run.metrics = {k: v for k, v in metrics.items() if k not in KILL_KEYS}
    task_run.save(using=ALIAS, update_fields=["metrics"])


def _organization(pipeline_run):
    from airflow_plugin.writeback.alerts import organization_of

    return organization_of(pipeline_run)


def after_run(pipeline_run, task_runs: dict[str, Any], manifests: dict[str, dict[str, Any]]) -> None:
    """Resource alerts of each task's manifest, then the run against its baseline; never raises."""
    try:
        _after_run(pipeline_run, task_runs, manifests)
    except Exception as exc:
        log.warning(
            "write-back: performance and resource checks of run %s skipped: %s: %s",
            pipeline_run.pk,
            type(exc).__name__,
            exc,
        )


def _after_run(pipeline_run, task_runs: dict[str, Any], manifests: dict[str, dict[str, Any]]) -> None:
    from django_etl.alertpolicy import resolve
    from django_etl.monitoring import performance, resource_alerts
    from django_etl.runs.choices import RunStatus

    pipeline = performance.pipeline_facts(pipeline_run.pipeline_id, ALIAS)
    if pipeline is None:
        return
    policy = resolve(pipeline["config"], pipeline["organization__settings"])
    if not policy.enabled:
        return
    steps = performance.step_rows(pipeline_run.pipeline_id, ALIAS)
    names = {step_id: name for step_id, (name, _) in steps.items()}
    cleared: list[str] = []
    for task_id, task_run in task_runs.items():
        forget_older_kill(task_run)
        manifest = manifests.get(task_id)
        if manifest is None or was_killed(task_run):
            continue
        name, step_limit = steps.get(str(task_run.pipeline_step_id), (task_id, None))
        cleared += resource_alerts.check_task(
            pipeline_run,
            task_run,
            task_id,
            manifest,
            # A step's own memory_limit_mb wins over the pipeline's and the organization's.
            policy=replace(policy, memory_limit_mb=int(step_limit)) if step_limit else policy,
            organization_id=pipeline["organization_id"],
            step_name=name,
            using=ALIAS,
        )
    succeeded = [tr.pipeline_step_id for tr in task_runs.values() if tr.status == RunStatus.SUCCESS]
    cleared += resource_alerts.oom_kill_conditions(pipeline_run.pipeline_id, succeeded)
    resource_alerts.clear(pipeline_run, cleared, ALIAS)
    performance.check_finished_run(
        pipeline_run, list(task_runs.values()), using=ALIAS, pipeline=pipeline, names=names
    )
