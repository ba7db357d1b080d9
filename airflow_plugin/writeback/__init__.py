"""Write-back: Airflow's events become PipelineRun, TaskRun, Alert and DataLineage rows (docs/write-back.md).

The public surface is what Airflow and the rest of the code call: the callbacks the DAG builder attaches
(``TASK_CALLBACKS``, ``DAG_CALLBACKS``), the listener module the plugin registers, ``setup`` / ``flush`` /
``close_connection`` for tests and the demo runner, and the ``catchup`` module for Django's catch-up reconciler
(django_etl.control.catchup). Everything else in this package is internal. Importing it costs no Django import:
the builder imports it at every DAG-file parse.
"""

from __future__ import annotations

from typing import Any

from airflow_plugin.writeback.callbacks import DAG_CALLBACKS, TASK_CALLBACKS

__all__ = ["DAG_CALLBACKS", "TASK_CALLBACKS", "catchup", "close_connection", "flush", "listener", "setup"]

# Loaded on first use: a DAG-file parse needs only the callbacks, not the listener or the delivery queue.
_LAZY = {
    "close_connection": ("delivery", "close_connection"),
    "flush": ("delivery", "flush"),
    "setup": ("delivery", "setup_django"),
    "listener": ("listener", None),
    "catchup": ("catchup", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    module_name, attribute = _LAZY[name]
    module = import_module(f"{__name__}.{module_name}")
    return module if attribute is None else getattr(module, attribute)
