"""The load step's operator."""

from __future__ import annotations

from airflow_plugin.operators.base import EtlStepOperator


class LoadOperator(EtlStepOperator):
    step_type = "load"
