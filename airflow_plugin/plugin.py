"""The Airflow plugin (entry point ``airflow.plugins``) that registers the write-back listener."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class DjangoEtlPlugin(AirflowPlugin):
    name = "django_etl"
    listeners: list = []
