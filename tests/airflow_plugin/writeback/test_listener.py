"""The listener plugin: found through the airflow.plugins entry point by the scheduler and by task processes."""

from __future__ import annotations

import pytest

from airflow_plugin.writeback import listener

pytestmark = pytest.mark.integration


def test_listener_registered_in_airflow_core_listener_manager():
    from airflow.listeners.listener import get_listener_manager

    manager = get_listener_manager()
    assert manager.pm.is_registered(listener)
    assert manager.has_listeners


def test_listener_registered_in_task_sdk_listener_manager():
    from airflow.sdk.listener import get_listener_manager

    assert get_listener_manager().pm.is_registered(listener)


def test_listener_plugin_found_through_entry_point():
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "django_etl"]
    plugin = entry.load()
    assert listener in plugin.listeners


class Broken:
    """Looks like a pipeline's task instance or DAG run, and breaks on anything else."""

    dag_id = "pipeline_" + "0" * 32

    def __getattr__(self, name):
        raise RuntimeError(f"no {name}")


def test_listener_hooks_never_raise_on_unexpected_objects(caplog):
    caplog.set_level("WARNING", logger="airflow_plugin.writeback")
    listener.on_task_instance_success(None, Broken())
    listener.on_dag_run_failed(Broken(), "task_failure")
    listener.on_dag_run_running(Broken(), "started")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("write-back" in m and "skipped" in m for m in messages) == 3


def test_listener_ignores_dags_that_are_not_pipelines(caplog):
    caplog.set_level("DEBUG", logger="airflow_plugin.writeback")

    class OtherTask:
        dag_id = "etl_maintenance"

    listener.on_task_instance_success(None, OtherTask())
    listener.on_dag_run_failed(OtherTask(), "task_failure")
    assert caplog.records == []
