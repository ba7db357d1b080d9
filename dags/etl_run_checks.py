"""Airflow DAG ``etl_run_checks``: every few minutes, flag runs still running far past their baseline (check_runs)."""

from __future__ import annotations

from airflow_plugin.maintenance.jobs import Job, build_job_dag

dag = build_job_dag(
    Job(
        dag_id="etl_run_checks",
        display_name="ETL: overdue run checks",
        description="Raises PERFORMANCE_DEGRADATION for runs still running far past their baseline or hard limit.",
        callable_path="django_etl.monitoring.running:check_running_runs",
        schedule_setting="ETL_RUN_CHECKS_SCHEDULE",
    )
)
