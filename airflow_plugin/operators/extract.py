"""The extract step's operator."""

from __future__ import annotations

from airflow_plugin.operators.base import EtlStepOperator


class ExtractOperator(EtlStepOperator):
    step_type = "extract"
