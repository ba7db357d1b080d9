"""Write-back: Airflow's events become PipelineRun, TaskRun, Alert and DataLineage rows (docs/write-back.md).

The public surface is what Airflow and the rest of the code call: the callbacks the DAG builder attaches
(``TASK_CALLBACKS``, ``DAG_CALLBACKS``), the listener module the plugin registers, and ``setup`` / ``flush`` /
``close_connection`` for tests and the demo runner. Everything else in this package is internal. Importing it
costs no Django import: the builder imports it at every DAG-file parse.
"""

from __future__ import annotations

from airflow_plugin.writeback import listener
from airflow_plugin.writeback.callbacks import DAG_CALLBACKS, TASK_CALLBACKS
from airflow_plugin.writeback.delivery import close_connection, flush
from airflow_plugin.writeback.delivery import setup_django as setup

__all__ = ["DAG_CALLBACKS", "TASK_CALLBACKS", "close_connection", "flush", "listener", "setup"]
