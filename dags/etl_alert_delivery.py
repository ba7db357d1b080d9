"""Airflow DAG ``etl_alert_delivery``: every 2 minutes, sends the alert deliveries that are due (deliver_alerts)."""

from __future__ import annotations

from airflow_plugin.maintenance.jobs import Job, build_job_dag

dag = build_job_dag(
    Job(
        dag_id="etl_alert_delivery",
        display_name="ETL: alert delivery",
        description="Drains the alert outbox: email and webhook deliveries of new and escalated alerts, retried.",
        callable_path="django_etl.monitoring.routing:deliver_alerts_job",
        schedule_setting="ETL_ALERT_DELIVERY_SCHEDULE",
    )
)
