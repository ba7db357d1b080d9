"""Airflow DAG ``etl_generate_dags``: keeps this dags folder in line with the pipelines in Django."""

from __future__ import annotations

from airflow_plugin.maintenance import build_maintenance_dag

dag = build_maintenance_dag()
