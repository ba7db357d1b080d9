"""One operator class per step type, and the registry the DAG builder picks them from."""

from __future__ import annotations

from airflow_plugin.operators.base import EtlStepOperator
from airflow_plugin.operators.extract import ExtractOperator
from airflow_plugin.operators.load import LoadOperator
from airflow_plugin.operators.notify import NotifyOperator
from airflow_plugin.operators.transform import TransformOperator
from airflow_plugin.operators.validate import ValidateOperator

OPERATORS: dict[str, type[EtlStepOperator]] = {
    "extract": ExtractOperator,
    "transform": TransformOperator,
    "load": LoadOperator,
    "validate": ValidateOperator,
    "notify": NotifyOperator,
}

__all__ = [
    "OPERATORS",
    "EtlStepOperator",
    "ExtractOperator",
    "LoadOperator",
    "NotifyOperator",
    "TransformOperator",
    "ValidateOperator",
]
