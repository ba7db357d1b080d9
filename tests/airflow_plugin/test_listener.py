"""The listener plugin: found through the airflow.plugins entry point by the scheduler and by task processes."""

from __future__ import annotations

import pytest

from airflow_plugin import listener

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


def test_listener_hooks_never_raise_on_unexpected_objects(caplog):
    caplog.set_level("WARNING", logger="airflow_plugin.recorder")
    listener.on_task_instance_success(None, object())
    listener.on_dag_run_failed(object(), "task_failure")
    listener.on_dag_run_running(object(), "started")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("write-back" in m and "skipped" in m for m in messages) == 3
