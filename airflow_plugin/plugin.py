"""The Airflow plugin (entry point ``airflow.plugins``) that registers the write-back listener."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_plugin.writeback import listener
from django_etl import conf


class _WarmUpOnly:
    """The listener's lifecycle hooks without its events: with ETL_WRITEBACK off, Airflow's components still set
    Django up when they start (the operators need it), so a measurement of write-back's cost compares like with
    like."""

    on_starting = staticmethod(listener.on_starting)


class DjangoEtlPlugin(AirflowPlugin):
    name = "django_etl"
    listeners = [listener] if conf.value("ETL_WRITEBACK") else [_WarmUpOnly()]
