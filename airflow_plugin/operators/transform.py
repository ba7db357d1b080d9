"""The transform step's operator."""

from __future__ import annotations

from airflow_plugin.operators.base import EtlStepOperator


class TransformOperator(EtlStepOperator):
    step_type = "transform"
