"""Run statuses and trigger types, importable without loading models (the recorder uses them)."""

from __future__ import annotations

from django.db import models


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMEOUT = "timeout", "Timeout"
    # Task runs that never ran (deviation: see docs/data-model.md).
    SKIPPED = "skipped", "Skipped"
    UPSTREAM_FAILED = "upstream_failed", "Upstream failed"


class TriggerType(models.TextChoices):
    MANUAL = "manual", "Manual"
    SCHEDULED = "scheduled", "Scheduled"
    API = "api", "API"
    WEBHOOK = "webhook", "Webhook"


FINISHED_STATUSES = (
    RunStatus.SUCCESS,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.TIMEOUT,
    RunStatus.SKIPPED,
    RunStatus.UPSTREAM_FAILED,
)
