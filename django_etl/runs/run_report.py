"""A plain-text report of one PipelineRun: its task runs, alerts and lineage, and where to browse them."""

from __future__ import annotations

from datetime import timedelta

from django_etl.lineage.models import DataLineage
from django_etl.monitoring.models import Alert
from django_etl.runs.models import PipelineRun, TaskRun

NOT_RUN = {"skipped", "upstream_failed", "pending"}


def _seconds(delta) -> str:
    return f"{delta.total_seconds():.2f} s" if delta is not None else "—"


def _step_time(task: TaskRun):
    """The step's own working time when the operator reported it, else the task instance's span."""
    if task.status in NOT_RUN:
        return None
    seconds = (task.metrics or {}).get("duration_seconds")
    return timedelta(seconds=float(seconds)) if seconds is not None else task.duration


def report_lines(run: PipelineRun) -> list[str]:
    tasks = list(TaskRun.objects.filter(pipeline_run=run).select_related("pipeline_step"))
    tasks.sort(key=lambda t: (t.pipeline_step.order_index, t.pipeline_step.name))
    lines = [
        f"PipelineRun {run.pk}",
        f"  pipeline  {run.pipeline.name} (version {run.context.get('pipeline_version')})",
        f"  status    {run.status}    trigger {run.trigger_type}    duration {_seconds(run.duration)}",
        f"  rows      extracted {run.metrics.get('rows_extracted', 0)}, loaded {run.metrics.get('rows_loaded', 0)}",
        "",
        f"  {'step':<24} {'type':<10} {'status':<16} {'rows in':>8} {'rows out':>8} {'time':>9} retries",
    ]
    for task in tasks:
        metrics = task.metrics or {}
        lines.append(
            f"  {task.pipeline_step.name[:24]:<24} {task.pipeline_step.step_type:<10} {task.status:<16} "
            f"{metrics.get('rows_in', '—')!s:>8} {metrics.get('rows_out', '—')!s:>8} "
            f"{_seconds(_step_time(task)):>9} {task.retry_count}"
        )
    alerts = list(Alert.objects.filter(pipeline_run=run).order_by("created_at"))
    lines += ["", f"  alerts ({len(alerts)})"]
    lines += [f"    [{a.level}] {a.get_alert_type_display()}: {a.message[:100]}" for a in alerts] or [
        "    none"
    ]
    edges = list(
        DataLineage.objects.filter(target_task__in=tasks).select_related(
            "source_task__pipeline_step", "target_task__pipeline_step"
        )
    )
    lines += ["", f"  lineage ({len(edges)} edges)"]
    lines += [
        f"    {e.source_task.pipeline_step.name} -> {e.target_task.pipeline_step.name} "
        f"({e.relationship_type}; {', '.join(e.metadata.get('datasets', []))})"
        for e in edges
    ] or ["    none"]
    return lines


def browse_lines(run: PipelineRun, airflow_home: str) -> list[str]:
    return [
        "",
        "Browse it:",
        "  Django admin: make admin, then open "
        f"http://127.0.0.1:8000/admin/runs/pipelinerun/{run.pk}/change/ (login admin / admin)",
        f"  Airflow UI:   AIRFLOW_HOME={airflow_home} .venv/bin/airflow standalone, then open "
        f"http://127.0.0.1:8080/dags/{run.airflow_dag_id}/runs/{run.airflow_run_id}",
    ]
