"""The pipeline's own configuration model (schedule, defaults, params).

Step kinds' models live in ``django_etl.stepkinds.schemas``, connectors' with their adapters in
``django_etl.dataplane``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from django_etl.alertpolicy import MonitoringConfig
from django_etl.configmodel import Identifier, Strict

# ---------------------------------------------------------------- pipeline


class ParamSpec(Strict):
    default: Any = None
    type: Literal["string", "integer", "number", "boolean", "object", "array"] | None = None
    description: str = ""


class PipelineConfig(Strict):
    schedule: str | None = Field(None, description="Cron expression, @preset, or null for manual runs only.")
    start_date: str = Field("2024-01-01", description="ISO date or datetime of the first data interval.")
    timezone: str = "UTC"
    catchup: bool = False
    max_active_runs: int = Field(1, ge=1, le=64)
    dagrun_timeout_seconds: int | None = Field(None, gt=0)
    retries: int = Field(1, ge=0, le=20)
    retry_delay_seconds: int = Field(300, ge=0)
    execution_timeout_seconds: int | None = Field(3600, gt=0)
    owner: str = "etl"
    params: dict[Identifier, ParamSpec] = Field(default_factory=dict)
    # Thresholds of the performance, volume and resource alerts (docs/alerts.md); never compiled into the DAG.
    monitoring: MonitoringConfig | None = None
