"""What a user sees of one recorded pipeline run, as a plain dict: two runs recorded two ways compare equal.

Times are compared with the run's own Airflow task instances (two runs never share times); everything else
(statuses, tries, the task set, rows, datasets, alerts, lineage edges, the version that ran) as it is stored.
"""

from __future__ import annotations

from typing import Any


def user_view(pipeline_run, dag_run: dict[str, Any], task_instances: list[dict[str, Any]]) -> dict[str, Any]:
    from airflow_plugin.writeback.events import parse_when
    from django_etl.lineage.models import DataLineage

    tis = {ti["task_id"]: ti for ti in task_instances}
    steps = (pipeline_run.context or {}).get("steps") or {}
    task_of = {str(entry.get("id")): task_id for task_id, entry in steps.items()}
    tasks = {}
    for row in pipeline_run.task_runs.select_related("pipeline_step"):
        ti = tis[task_of.get(str(row.pipeline_step_id), row.pipeline_step.task_id)]
        metrics = row.metrics or {}
        tasks[row.pipeline_step.name] = {
            "status": row.status,
            "retry_count": row.retry_count,
            "try_number": metrics.get("try_number"),
            "max_tries": metrics.get("max_tries"),
            "rows": (metrics.get("rows_in"), metrics.get("rows_out")),
            "checks": (metrics.get("checks_total"), metrics.get("checks_failed")),
            "started_at is Airflow's": row.started_at == parse_when(ti["start_date"])
            if row.started_at
            else None,
            "completed_at is Airflow's": row.completed_at == parse_when(ti["end_date"]),
            "inputs": _datasets(row.input_data),
            "outputs": _datasets(row.output_data),
            "has logs": bool(row.logs),
        }
    metrics = pipeline_run.metrics or {}
    context = pipeline_run.context or {}
    return {
        "status": pipeline_run.status,
        "trigger_type": pipeline_run.trigger_type,
        "triggered_by": pipeline_run.triggered_by_id,
        "started_at is Airflow's": pipeline_run.started_at == parse_when(dag_run["start_date"]),
        "completed_at is Airflow's": pipeline_run.completed_at == parse_when(dag_run["end_date"]),
        "metrics": {
            key: metrics.get(key)
            for key in (
                "rows_extracted",
                "rows_loaded",
                "rows_moved",
                "tasks_by_state",
                "task_count",
                "reconciled",
            )
        },
        "context": {
            "version": context.get("pipeline_version"),
            "spec_hash": context.get("spec_hash"),
            "spec_source": context.get("spec_source"),
            "run_type": context.get("run_type"),
            "conf": context.get("conf"),
            "steps": sorted(steps),
        },
        "tasks": tasks,
        "alerts": [
            (kind, key.replace(dag_run["dag_run_id"], "<run>").replace(_iso(dag_run["end_date"]), "<end>"))
            for kind, key in alert_events(pipeline_run)
        ],
        "lineage": sorted(
            (e.source_task.pipeline_step.name, e.target_task.pipeline_step.name, e.relationship_type)
            for e in DataLineage.objects.filter(target_task__pipeline_run=pipeline_run).select_related(
                "source_task__pipeline_step", "target_task__pipeline_step"
            )
        ),
    }


def alert_events(pipeline_run) -> list[tuple[str, str]]:
    """(alert type, event key) of every alert event of this run: an open alert of a condition is one row across
    runs (monitoring/lifecycle.py), so a run's alerts are the events it added, wherever their row is now."""
    from django_etl.monitoring.models import Alert

    found = set()
    for alert in Alert.objects.filter(organization_id=pipeline_run.pipeline.organization_id):
        metadata = alert.metadata or {}
        for event in metadata.get("events") or []:
            run, _, key = str(event).partition("|")
            if key and run == str(pipeline_run.pk):
                found.add((alert.alert_type, key))
        if alert.pipeline_run_id == pipeline_run.pk and metadata.get("event_key"):
            found.add((alert.alert_type, metadata["event_key"]))
    return sorted(found)


def _iso(value: str | None) -> str:
    from airflow_plugin.writeback.events import parse_when

    return parse_when(value).isoformat() if value else "<no end>"


def _datasets(data: dict[str, Any] | None) -> list[tuple[Any, Any]] | None:
    if not data:
        return None
    return sorted((d.get("dataset"), d.get("rows")) for d in data.get("datasets") or [])
