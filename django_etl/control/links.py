"""Links from the admin to Airflow's pages of a DAG, a run and a task (ETL_AIRFLOW_UI_URL or the API's URL)."""

from __future__ import annotations

from django.utils.html import format_html

from django_etl.control import airflow_api


def airflow_link(dag_id: str, run_id: str = "", task_id: str = ""):
    """An "open in Airflow" link, or a dash when Airflow's address is not configured or the run has no id."""
    if task_id:
        url = airflow_api.task_url(dag_id, run_id, task_id)
    elif run_id:
        url = airflow_api.run_url(dag_id, run_id)
    else:
        url = airflow_api.dag_url(dag_id)
    if not url:
        return "—"
    return format_html('<a href="{}" target="_blank" rel="noopener">open in Airflow ↗</a>', url)


def task_id_of(task_run) -> str:
    """The Airflow task id of a TaskRun: the run's recorded map, else the step name's task id."""
    from django_etl.pipelines.naming import task_id_for

    steps = (task_run.pipeline_run.context or {}).get("steps") or {}
    step_id = str(task_run.pipeline_step_id)
    for task_id, entry in steps.items():
        if str((entry or {}).get("id")) == step_id:
            return task_id
    return task_id_for(task_run.pipeline_step.name)
