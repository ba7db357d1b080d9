"""The Airflow plugin (entry point ``airflow.plugins``) that registers the write-back listener."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_plugin.writeback import listener


class DjangoEtlPlugin(AirflowPlugin):
    name = "django_etl"
    listeners = [listener]
