"""Airflow DAG ``etl_catchup``: fills write-back gaps (Django's database was away) from Airflow's REST API."""

from __future__ import annotations

from airflow_plugin.maintenance.jobs import Job, build_job_dag

dag = build_job_dag(
    Job(
        dag_id="etl_catchup",
        display_name="ETL: write-back catch-up",
        description="Records in Django the pipeline runs, task runs and alerts write-back could not deliver.",
        callable_path="django_etl.control.catchup:catch_up_job",
        schedule_setting="ETL_CATCHUP_SCHEDULE",
    )
)
