"""Step implementations, one module per step type; each takes a StepRun and fills its StepResult."""

from __future__ import annotations

from collections.abc import Callable

from airflow_plugin.steps import extract, load, notify, transform, validate
from airflow_plugin.steps.context import StepRun

IMPLEMENTATIONS: dict[str, Callable[[StepRun], None]] = {
    "extract": extract.run,
    "transform": transform.run,
    "load": load.run,
    "validate": validate.run,
    "notify": notify.run,
}
