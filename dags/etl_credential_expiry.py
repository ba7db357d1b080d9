"""Airflow DAG ``etl_credential_expiry``: daily, one warning alert per credential that expires soon (check_credentials)."""

from __future__ import annotations

from airflow_plugin.maintenance.jobs import Job, build_job_dag

dag = build_job_dag(
    Job(
        dag_id="etl_credential_expiry",
        display_name="ETL: credential expiry warnings",
        description="Raises one CREDENTIAL_EXPIRING alert per credential within the warning window.",
        callable_path="django_etl.monitoring.expiry:raise_expiry_warnings",
        schedule_setting="ETL_CREDENTIAL_EXPIRY_SCHEDULE",
    )
)
