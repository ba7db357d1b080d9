"""Task and DAG callbacks: attached under the names the DAG builder uses, and never able to fail a task."""

from __future__ import annotations

import pytest

from airflow_plugin.writeback import callbacks


def test_callbacks_cover_every_task_and_dag_hook():
    assert set(callbacks.TASK_CALLBACKS) == {
        "on_execute_callback",
        "on_success_callback",
        "on_failure_callback",
        "on_retry_callback",
    }
    assert set(callbacks.DAG_CALLBACKS) == {"on_success_callback", "on_failure_callback"}


@pytest.mark.parametrize("name", ["on_execute_callback", "on_success_callback", "on_failure_callback"])
def test_task_callback_with_broken_context_logs_instead_of_raising(name, caplog):
    caplog.set_level("WARNING", logger="airflow_plugin.writeback")
    callbacks.TASK_CALLBACKS[name]({"ti": None})
    assert any("write-back callback" in r.getMessage() for r in caplog.records)


def test_dag_callback_with_broken_context_logs_instead_of_raising(caplog):
    caplog.set_level("WARNING", logger="airflow_plugin.writeback")
    callbacks.on_dag_failure({})
    assert any("write-back DAG callback" in r.getMessage() for r in caplog.records)
