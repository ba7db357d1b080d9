"""Airflow DAG ``etl_partitions``: daily, task_runs months ahead, retention (archive, detach, drop) and the check."""

from __future__ import annotations

from datetime import timedelta

from airflow_plugin.maintenance.jobs import Job, build_job_dag

dag = build_job_dag(
    Job(
        dag_id="etl_partitions",
        display_name="ETL: task_runs partitions",
        description="manage_partitions: creates months ahead, archives months past the retention, alerts on gaps.",
        callable_path="django_etl.runs.maintenance:maintain_partitions",
        schedule_setting="ETL_PARTITIONS_SCHEDULE",
        timeout=timedelta(hours=2),  # archiving a month of millions of task runs takes minutes
    )
)
