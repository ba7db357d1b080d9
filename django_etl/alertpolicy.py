"""Thresholds of the performance, volume and resource alerts: settings, then organization, then pipeline.

The same keys are accepted in ``Pipeline.config["monitoring"]`` (validated with the rest of the pipeline's
config by ``pipelines/validation``) and in ``Organization.settings["monitoring"]`` (validated by
:func:`validate_organization_settings`, used by the organization's ``clean()``); each key left out falls back
to the next level, the last being the ``ETL_*`` settings (``django_etl/conf.py``). See docs/alerts.md.
No Django import: the write-back package and the data plane read it too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pydantic import Field, ValidationError

from django_etl import conf
from django_etl.configmodel import Strict

MONITORING_KEY = "monitoring"


class MonitoringConfig(Strict):
    """The ``monitoring`` object of a pipeline's config or an organization's settings; every key optional."""

    enabled: bool | None = Field(None, description="false: no performance, volume or resource alert.")
    window: int | None = Field(None, ge=3, le=500, description="Recent successful runs the baseline uses.")
    min_history: int | None = Field(
        None, ge=3, le=500, description="Successful runs needed before any comparison (no alert before)."
    )
    tolerance: float | None = Field(
        None, gt=0, le=100, description="How many scaled MADs from the median a value must be."
    )
    min_ratio: float | None = Field(
        None, ge=1, le=1000, description="And how many times the median (or below median / min_ratio)."
    )
    min_seconds: float | None = Field(
        None, ge=0, description="Durations under this many seconds are never called slow (noise)."
    )
    volume_ratio: float | None = Field(
        None, gt=1, le=1000, description="Rows this many times above or below the median: a volume anomaly."
    )
    overdue_ratio: float | None = Field(
        None, ge=1, le=1000, description="A running run is flagged past this many times its median duration."
    )
    max_run_seconds: int | None = Field(
        None, ge=0, description="Hard limit of a run's duration, with or without history; 0: none."
    )
    memory_limit_mb: int | None = Field(
        None, ge=0, description="Peak memory of one task above which it is flagged; 0: none."
    )
    memory_share: float | None = Field(
        None, gt=0, le=1, description="Share of the worker's memory one task's peak may reach."
    )
    staging_min_free_mb: int | None = Field(
        None, ge=0, description="Free space of local staging under which a resource alert is raised."
    )


@dataclass(frozen=True)
class Policy:
    """The thresholds in force for one pipeline (see :class:`MonitoringConfig` for their meaning)."""

    enabled: bool
    window: int
    min_history: int
    tolerance: float
    min_ratio: float
    min_seconds: float
    volume_ratio: float
    overdue_ratio: float
    max_run_seconds: int
    memory_limit_mb: int
    memory_share: float
    staging_min_free_mb: int

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Policy field -> the ETL_* setting holding its platform default.
DEFAULT_SETTINGS = {
    "enabled": "ETL_MONITORING_ENABLED",
    "window": "ETL_BASELINE_WINDOW",
    "min_history": "ETL_BASELINE_MIN_HISTORY",
    "tolerance": "ETL_BASELINE_TOLERANCE",
    "min_ratio": "ETL_BASELINE_MIN_RATIO",
    "min_seconds": "ETL_BASELINE_MIN_SECONDS",
    "volume_ratio": "ETL_VOLUME_RATIO",
    "overdue_ratio": "ETL_RUN_OVERDUE_RATIO",
    "max_run_seconds": "ETL_RUN_MAX_SECONDS",
    "memory_limit_mb": "ETL_TASK_MEMORY_LIMIT_MB",
    "memory_share": "ETL_TASK_MEMORY_SHARE",
    "staging_min_free_mb": "ETL_STAGING_MIN_FREE_MB",
}


def overrides(container: Any) -> dict[str, Any]:
    """The keys set in ``container["monitoring"]``; an invalid object counts as empty (it is reported on save)."""
    if not isinstance(container, dict):
        return {}
    raw = container.get(MONITORING_KEY)
    if not isinstance(raw, dict):
        return {}
    try:
        parsed = MonitoringConfig.model_validate(raw)
    except ValidationError:
        return {}
    return parsed.model_dump(exclude_none=True)


def resolve(pipeline_config: Any = None, organization_settings: Any = None) -> Policy:
    """The policy of a pipeline: its config's keys, else its organization's, else the settings."""
    values = {name: conf.value(setting) for name, setting in DEFAULT_SETTINGS.items()}
    values.update(overrides(organization_settings))
    values.update(overrides(pipeline_config))
    if values["min_history"] > values["window"]:
        # A window smaller than the history it needs could never compare: the history wins.
        values["window"] = values["min_history"]
    return Policy(**values)


def policy_of(pipeline) -> Policy:
    """The policy of a Pipeline row (its organization must be loaded or loadable)."""
    return resolve(pipeline.config, getattr(pipeline.organization, "settings", None))


def validate_organization_settings(settings: Any, report, where: str) -> None:
    """Add every problem of ``settings["monitoring"]`` to ``report`` (a validation_report.Report)."""
    from django_etl.validation_report import check_schema

    if not isinstance(settings, dict):
        report.add(where, "settings", "must be a JSON object", field="settings")
        return
    if MONITORING_KEY in settings:
        check_schema(
            report, MonitoringConfig, settings[MONITORING_KEY], where, "settings.monitoring", "settings"
        )
