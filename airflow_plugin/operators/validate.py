"""The validate step's operator."""

from __future__ import annotations

from airflow_plugin.operators.base import EtlStepOperator


class ValidateOperator(EtlStepOperator):
    step_type = "validate"
