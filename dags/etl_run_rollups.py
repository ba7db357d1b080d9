"""Airflow DAG ``etl_run_rollups``: every 10 minutes, the daily task-run sums per step the dashboard reads."""

from __future__ import annotations

from airflow_plugin.maintenance.jobs import Job, build_job_dag

dag = build_job_dag(
    Job(
        dag_id="etl_run_rollups",
        display_name="ETL: dashboard rollups",
        description="rollup_runs: sums task runs per step and day (task_runs_daily) for the dashboard's step statistics.",
        callable_path="django_etl.runs.rollup:refresh",
        schedule_setting="ETL_RUN_ROLLUPS_SCHEDULE",
    )
)
