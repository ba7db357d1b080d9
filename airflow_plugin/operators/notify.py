"""The notify step's operator."""

from __future__ import annotations

from airflow_plugin.operators.base import EtlStepOperator


class NotifyOperator(EtlStepOperator):
    step_type = "notify"
